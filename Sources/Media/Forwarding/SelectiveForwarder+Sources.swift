import RTP

/// Streams a participant adds or stops after it joined (docs/rooms.md "Added streams"): a
/// screen share its later offer adds (RFC 3264 §8.1), or stops with port 0 (§8.2).
extension SelectiveForwarder {
    /// Adds a single stream `participant` sends from now on (not simulcast: a screen share is
    /// sent as one stream, which the budget pays for first), with an outgoing stream to every
    /// other participant. The caller then negotiates them with each receiver
    /// (``outgoingStreams(to:)``, ``bind(receiver:ssrc:_:)``).
    ///
    /// - Throws: ``MediaError`` `.unknownParticipant`; `.limitReached` past
    ///   ``ForwardingConfiguration/maxSourcesPerParticipant``; `.forbidden` for a simulcast
    ///   source; `.conflict` for an SSRC another stream of the call uses (RFC 3550 §8).
    public mutating func addSource(_ source: ForwardedSource, to id: String) throws(MediaError) {
        guard let participant = participants[id] else { throw MediaError(.unknownParticipant, "no participant \(id) in the forwarded call") }
        guard source.simulcastRIDs.isEmpty else {
            throw MediaError(.forbidden, "participant \(id) adds a simulcast stream: an added stream is sent as one stream")
        }
        guard participant.forwardedSources.count < configuration.maxSourcesPerParticipant else {
            throw MediaError(.limitReached, "participant \(id) sends \(participant.forwardedSources.count) streams already; at most \(configuration.maxSourcesPerParticipant) are forwarded")
        }
        let ssrcs = [source.ssrc] + (source.retransmission.map { [$0.ssrc] } ?? [])
        guard Set(ssrcs).count == ssrcs.count, ssrcs.allSatisfy({ !usedSSRCs.contains($0) }) else {
            throw MediaError(.conflict, "participant \(id) adds SSRC \(ssrcs), which another stream of the call already uses (RFC 3550 §8: SSRCs are unique in a session)")
        }
        usedSSRCs.formUnion(ssrcs)
        let capacity = source.kind == .video ? configuration.videoCacheCapacity : configuration.audioCacheCapacity
        participants[id]!.sources[source.ssrc] = SourceStream(description: source, cache: ForwardingPacketCache(capacity: capacity, maxAge: configuration.cacheMaxAge))
        sourceOwners[source.ssrc] = id
        if let rtx = source.retransmission {
            participants[id]!.repairs[rtx.ssrc] = source.ssrc
            sourceOwners[rtx.ssrc] = id
        }
        for receiverID in participants.keys where receiverID != id {
            let stream = newOutgoing(from: id, source: source)
            participants[receiverID]!.outgoing[stream.ssrc] = stream
            participants[receiverID]!.outgoingBySource[source.ssrc] = stream.ssrc
        }
    }

    /// Stops the single stream `ssrc` of `participant`: its outgoing streams end, and every
    /// receiver that had one bound gets an RTCP BYE for it (RFC 3550 §6.6). Nothing for an SSRC
    /// it does not send.
    public mutating func removeSource(_ ssrc: UInt32, of id: String) -> [ForwarderOutput] {
        guard let source = participants[id]?.sources.removeValue(forKey: ssrc), source.layerOf == nil else { return [] }
        sourceOwners[ssrc] = nil
        usedSSRCs.remove(ssrc)
        if let rtx = source.description.retransmission {
            participants[id]!.repairs[rtx.ssrc] = nil
            sourceOwners[rtx.ssrc] = nil
            usedSSRCs.remove(rtx.ssrc)
        }
        var outputs: [ForwarderOutput] = []
        for receiverID in participants.keys where receiverID != id {
            guard let outgoingSSRC = participants[receiverID]!.outgoingBySource.removeValue(forKey: ssrc),
                  let stream = participants[receiverID]!.outgoing.removeValue(forKey: outgoingSSRC) else { continue }
            usedSSRCs.remove(outgoingSSRC)
            if let rtx = stream.retransmissionSSRC { usedSSRCs.remove(rtx) }
            guard let binding = stream.binding else { continue }
            var ended = [outgoingSSRC]
            if binding.retransmissionPayloadType != nil, let rtx = stream.retransmissionSSRC { ended.append(rtx) }
            outputs.append(.rtcp(to: receiverID, [.goodbye(RTCPGoodbye(ssrcs: ended, reason: "stream stopped"))]))
        }
        return outputs
    }
}
