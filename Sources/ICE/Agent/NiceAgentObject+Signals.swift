internal import CNice
import NIOCore

// libnice's signals and receive callback, bridged to the event stream. All of them run on
// the GLib thread. The C callbacks capture nothing; their context is the retained
// NiceEventSink passed as user data.

extension NiceAgentObject {
    static func connectSignals(_ agent: OpaquePointer, stream: UInt32, component: UInt32, sink: NiceEventSink, context: OpaquePointer) {
        let instance = UnsafeMutableRawPointer(agent)
        // One reference for libnice, released when the NiceAgent is finalised: after that
        // no signal or receive callback can run.
        let data = Unmanaged.passRetained(sink).toOpaque()
        g_object_weak_ref(
            UnsafeMutablePointer<GObject>(agent),
            { data, _ in Unmanaged<NiceEventSink>.fromOpaque(data!).release() },
            data
        )

        let newCandidate: @convention(c) (OpaquePointer?, UnsafeMutablePointer<NiceCandidate>?, UnsafeMutableRawPointer?) -> Void = {
            _, candidate, data in
            guard let candidate else { return }
            let sink = NiceEventSink.from(data)
            let parsed = ICECandidate(nice: candidate)
            sink.logger.debug("local candidate", metadata: ["candidate": "\(parsed.sdp)"])
            sink.continuation.yield(.localCandidate(parsed))
        }
        connect(instance, "new-candidate-full", unsafeBitCast(newCandidate, to: GCallback.self), data)

        let gatheringDone: @convention(c) (OpaquePointer?, UInt32, UnsafeMutableRawPointer?) -> Void = {
            _, _, data in
            let sink = NiceEventSink.from(data)
            sink.logger.debug("candidate gathering done")
            sink.continuation.yield(.gatheringDone)
        }
        connect(instance, "candidate-gathering-done", unsafeBitCast(gatheringDone, to: GCallback.self), data)

        let stateChanged: @convention(c) (OpaquePointer?, UInt32, UInt32, UInt32, UnsafeMutableRawPointer?) -> Void = {
            _, _, _, state, data in
            let sink = NiceEventSink.from(data)
            let mapped = ICEComponentState(niceState: state)
            sink.logger.debug("component state", metadata: ["state": "\(mapped.rawValue)"])
            sink.continuation.yield(.stateChanged(mapped))
        }
        connect(instance, "component-state-changed", unsafeBitCast(stateChanged, to: GCallback.self), data)

        let selectedPair: @convention(c) (
            OpaquePointer?, UInt32, UInt32, UnsafeMutablePointer<NiceCandidate>?, UnsafeMutablePointer<NiceCandidate>?,
            UnsafeMutableRawPointer?
        ) -> Void = { _, _, _, local, remote, data in
            guard let local, let remote else { return }
            let sink = NiceEventSink.from(data)
            let pair = ICESelectedPair(local: ICECandidate(nice: local), remote: ICECandidate(nice: remote))
            sink.logger.debug("selected pair", metadata: ["pair": "\(pair)"])
            sink.continuation.yield(.selectedPair(pair))
        }
        connect(instance, "new-selected-pair-full", unsafeBitCast(selectedPair, to: GCallback.self), data)

        // STUN is only processed on an attached receive path (FIELD-NOTES): attach it now.
        nice_agent_attach_recv(
            agent, stream, component, context,
            { _, _, _, length, buffer, data in
                guard let buffer else { return }
                // Stamped first, on libnice's thread as it hands the datagram over (a relayed
                // one too: libnice unwraps TURN before this callback).
                let arrival = ContinuousClock.now
                let bytes = UnsafeRawBufferPointer(start: buffer, count: Int(length))
                NiceEventSink.from(data).received(ByteBuffer(bytes: bytes), at: arrival)
            },
            data
        )
    }

    private static func connect(_ instance: UnsafeMutableRawPointer, _ signal: String, _ handler: GCallback, _ data: UnsafeMutableRawPointer) {
        let id = g_signal_connect_data(instance, signal, handler, data, nil, GConnectFlags(rawValue: 0))
        precondition(id != 0, "libnice has no signal '\(signal)'")
    }
}

extension ICEComponentState {
    init(niceState: UInt32) {
        switch NiceComponentState(rawValue: niceState) {
        case NICE_COMPONENT_STATE_GATHERING: self = .gathering
        case NICE_COMPONENT_STATE_CONNECTING: self = .connecting
        case NICE_COMPONENT_STATE_CONNECTED: self = .connected
        case NICE_COMPONENT_STATE_READY: self = .ready
        case NICE_COMPONENT_STATE_FAILED: self = .failed
        default: self = .disconnected
        }
    }
}
