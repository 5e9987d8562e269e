import Metrics
import Media
import Synchronization

/// The forwarding node's counters on `/metrics` (docs/rooms.md "Metrics"): rooms, participants,
/// forwarded packets and bytes per direction, NACKs answered from the cache, PLIs to sources.
///
/// ``ForwardedCall`` adds the growth of its core's ``ForwarderCounters`` after each packet, so the
/// totals are the sum over every forwarded call the process ran.
struct ForwarderMetrics: Sendable {
    let calls = Gauge(label: "meshnode_forwarder_rooms_active")
    let participants = Gauge(label: "meshnode_forwarder_participants_active")
    /// The process's totals behind the two gauges (a gauge records absolute values; each call knows only its own).
    private static let activeCalls = Atomic<Int>(0)
    private static let activeParticipants = Atomic<Int>(0)

    /// A forwarded call started (+1) or ended (−1).
    func callsChanged(by delta: Int) { calls.record(Self.activeCalls.add(delta, ordering: .relaxed).newValue) }
    /// A participant joined (+1) or left (−1) a forwarded call.
    func participantsChanged(by delta: Int) { participants.record(Self.activeParticipants.add(delta, ordering: .relaxed).newValue) }
    /// Streams to receivers below the floor left out now (docs/rooms.md "A squeezed receiver").
    let videoPaused = Gauge(label: "meshnode_forwarder_video_paused")
    let audioWithheld = Gauge(label: "meshnode_forwarder_audio_withheld")
    private static let pausedVideo = Atomic<Int>(0)
    private static let withheldAudio = Atomic<Int>(0)
    /// A call's paused videos and withheld voices changed by these counts.
    func squeezeChanged(video: Int, audio: Int) {
        if video != 0 { videoPaused.record(Self.pausedVideo.add(video, ordering: .relaxed).newValue) }
        if audio != 0 { audioWithheld.record(Self.withheldAudio.add(audio, ordering: .relaxed).newValue) }
    }
    let videoPauses = Counter(label: "meshnode_forwarder_video_pauses_total", dimensions: [("event", "pause")])
    let videoResumes = Counter(label: "meshnode_forwarder_video_pauses_total", dimensions: [("event", "resume")])
    let audioWithholds = Counter(label: "meshnode_forwarder_audio_withheld_total", dimensions: [("event", "withhold")])
    let audioResumes = Counter(label: "meshnode_forwarder_audio_withheld_total", dimensions: [("event", "resume")])
    let packetsIn = Counter(label: "meshnode_forwarder_packets_total", dimensions: [("direction", "from_participants")])
    let packetsOut = Counter(label: "meshnode_forwarder_packets_total", dimensions: [("direction", "to_participants")])
    let bytesIn = Counter(label: "meshnode_forwarder_bytes_total", dimensions: [("direction", "from_participants")])
    let bytesOut = Counter(label: "meshnode_forwarder_bytes_total", dimensions: [("direction", "to_participants")])
    let nacksFromCache = Counter(label: "meshnode_forwarder_nack_packets_total", dimensions: [("answered", "cache")])
    let nacksToSource = Counter(label: "meshnode_forwarder_nack_packets_total", dimensions: [("answered", "source")])
    let retransmissionsThrottled = Counter(label: "meshnode_forwarder_retransmissions_throttled_total")
    let plis = Counter(label: "meshnode_forwarder_keyframe_requests_total", dimensions: [("kind", "pli")])
    let firs = Counter(label: "meshnode_forwarder_keyframe_requests_total", dimensions: [("kind", "fir")])
    let rejected = Counter(label: "meshnode_forwarder_rejected_packets_total")
    let layerSwitchesUp = Counter(label: "meshnode_forwarder_layer_switches_total", dimensions: [("direction", "up")])
    let layerSwitchesDown = Counter(label: "meshnode_forwarder_layer_switches_total", dimensions: [("direction", "down")])

    /// Adds what happened between two snapshots of one call's counters.
    func add(from old: ForwarderCounters, to new: ForwarderCounters) {
        func bump(_ counter: Counter, _ delta: Int) { if delta > 0 { counter.increment(by: Int64(delta)) } }
        bump(packetsIn, new.packetsIn - old.packetsIn)
        bump(packetsOut, new.packetsOut - old.packetsOut)
        bump(bytesIn, new.bytesIn - old.bytesIn)
        bump(bytesOut, new.bytesOut - old.bytesOut)
        bump(nacksFromCache, new.nacksAnsweredFromCache - old.nacksAnsweredFromCache)
        bump(nacksToSource, new.nacksForwardedToSource - old.nacksForwardedToSource)
        bump(retransmissionsThrottled, new.retransmissionsThrottled - old.retransmissionsThrottled)
        bump(plis, new.plisForwarded - old.plisForwarded)
        bump(firs, new.firsForwarded - old.firsForwarded)
        bump(rejected, new.rejected - old.rejected)
        bump(layerSwitchesDown, new.layerSwitchesDown - old.layerSwitchesDown)
        bump(videoPauses, new.videoPauses - old.videoPauses)
        bump(videoResumes, new.videoResumes - old.videoResumes)
        bump(audioWithholds, new.audioWithheld - old.audioWithheld)
        bump(audioResumes, new.audioResumed - old.audioResumed)
        bump(layerSwitchesUp, (new.layerSwitches - new.layerSwitchesDown) - (old.layerSwitches - old.layerSwitchesDown))
    }
}
