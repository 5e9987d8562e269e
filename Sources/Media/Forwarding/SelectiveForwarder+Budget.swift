import RTP

/// What each receiver gets from its bandwidth estimate (docs/rooms.md "Simulcast and layer
/// choice", "A squeezed receiver"): voices first, then every video's lowest layer, then higher
/// layers. Below the floor (the voices and the lowest layers do not all fit) the forwarder stops
/// sending the voices and pictures of those who spoke least recently: a paused video comes back
/// at a key frame of its target layer, a withheld voice with its numbers continuous.
extension SelectiveForwarder {
    /// An audio stream the budget leaves out for now, and where its numbers go on when it comes back.
    struct WithheldAudio: Sendable {
        /// The outgoing sequence number and timestamp the first withheld packet would have had, and when it came.
        var gap: (sequence: UInt16, timestamp: UInt32, at: Duration)?
        /// The budget allows it again: the next packet continues from `gap`.
        var resuming = false
    }

    /// Bytes a forwarded packet costs on the receiver's link beyond its RTP size: the extensions
    /// the forwarder writes (mid, transport-wide number), SRTP's tag, IPv4 and UDP. The estimate
    /// is in these terms (the transport-cc feedback weighs each packet so), and so are the rates
    /// it is spent on: a voice's 20 ms packets carry about a quarter of their size again.
    static let packetOverhead = 8 + 10 + 28

    /// Opus's RTP clock (RFC 7587 §4.1: always 48 kHz), for a withheld voice's timestamps.
    static let audioClockRate = 48_000.0

    /// The senders in the order their media is kept for a receiver that cannot take it all, as a
    /// rank (0 first): who speaks now (RFC 6464 level at or above the speaking level within the
    /// hold) before who does not; among those, what the receiver gets now before what it does not
    /// (so that equal voices do not take turns, each turn costing a key frame); then who spoke
    /// most recently; then by id.
    func speakingRanks(now: Duration, incumbents: Set<String>) -> [String: Int] {
        func speaking(_ participant: Participant) -> Bool {
            guard let recent = participant.loudestRecent else { return false }
            return now - recent.at <= configuration.speakingHold && recent.level <= configuration.speakingLevel
        }
        let never = Duration.zero - .seconds(1_000_000)
        let ordered = participants.map { (id: $0.key, speaking: speaking($0.value), lastSpoke: $0.value.lastSpokeAt ?? never) }
            .sorted { a, b in
                if a.speaking != b.speaking { return a.speaking }
                let aIn = incumbents.contains(a.id), bIn = incumbents.contains(b.id)
                if aIn != bIn { return aIn }
                if a.lastSpoke != b.lastSpoke { return a.lastSpoke > b.lastSpoke }
                return a.id < b.id
            }
        return Dictionary(uniqueKeysWithValues: ordered.enumerated().map { ($0.element.id, $0.offset) })
    }

    /// Picks each receiver's voices, paused videos and layers, every ``ForwardingConfiguration/layerChoiceInterval``.
    ///
    /// The estimate pays first for single video streams (a screen share: no layers to drop),
    /// then the voices in speaking order (at least ``ForwardingConfiguration/minimumVoices``),
    /// then each simulcast video's lowest layer in speaking order, then raises videos one layer
    /// at a time, all to the middle before any to the top, as far as the rest allows; rates are
    /// what the sources sent over the last second, with ``packetOverhead``. A voice or video that
    /// no longer fits stops at once; more voices or videos than are sent now, or a higher layer,
    /// only after the estimate allowed it for ``ForwardingConfiguration/layerUpHold`` (a receiver
    /// near a threshold does not flap). A swap (a new speaker for one who went quiet) is at once.
    /// A stream waiting for its target's key frame asks the source's layer for one (PLI,
    /// coalesced per source by ``tick(now:)``).
    mutating func chooseLayers(now: Duration) {
        for receiverID in participants.keys {
            guard now >= participants[receiverID]!.nextLayerChoice else { continue }
            participants[receiverID]!.nextLayerChoice = now + configuration.layerChoiceInterval
            chooseMedia(for: receiverID, now: now)
        }
        // A stream not yet on its target asks that layer for a key frame (not while paused).
        for receiver in participants.values {
            for stream in receiver.outgoing.values where stream.binding != nil {
                guard let layers = stream.simulcast, !layers.paused, layers.layer != layers.target,
                      let ssrc = participants[stream.from]?.simulcast[stream.sourceSSRC]?.ssrcs[layers.target] ?? nil else { continue }
                participants[stream.from]!.sources[ssrc]?.keyFramePending = true
            }
        }
    }

    private mutating func chooseMedia(for receiverID: String, now: Duration) {
        let receiver = participants[receiverID]!
        var budget = receiver.estimator.targetBitrate
        var voices: [(ssrc: UInt32, from: String, rate: Double)] = []
        var videos: [(ssrc: UInt32, from: String, rates: [Double?])] = []
        for stream in receiver.outgoing.values where stream.binding != nil {
            guard let owner = participants[stream.from] else { continue }
            if stream.simulcast != nil, var source = owner.simulcast[stream.sourceSSRC] {
                // A layer that sent nothing in the last second has no rate: a browser pauses
                // its upper layers while its own uplink estimate is low (Chromium's
                // qualityLimitationReason `bandwidth`), and a paused layer costing 0 would be
                // chosen first, leaving its receivers waiting for a key frame that never comes.
                let rates = source.rates.indices.map { index -> Double? in
                    source.ssrcs[index] == nil ? nil : source.rates[index].bitsPerSecond(now: now).flatMap { $0 > 0 ? $0 : nil }
                }
                participants[stream.from]!.simulcast[stream.sourceSSRC] = source
                videos.append((stream.ssrc, stream.from, rates))
            } else if var source = owner.sources[stream.sourceSSRC] {
                let rate = source.rate.bitsPerSecond(now: now) ?? 0
                participants[stream.from]!.sources[stream.sourceSSRC] = source
                if stream.kind == .audio { voices.append((stream.ssrc, stream.from, rate)) } else { budget -= rate }
            }
        }

        // Voices in speaking order while they fit.
        let voiceRanks = speakingRanks(now: now, incumbents: Set(voices.filter { receiver.outgoing[$0.ssrc]!.withheld == nil }.map(\.from)))
        voices.sort { voiceRanks[$0.from, default: .max] < voiceRanks[$1.from, default: .max] }
        var voiceCount = 0
        var voiceSpend = 0.0
        for voice in voices {
            guard voiceCount < configuration.minimumVoices || voiceSpend + voice.rate <= budget else { break }
            voiceSpend += voice.rate
            voiceCount += 1
        }
        let voicesNow = voices.filter { receiver.outgoing[$0.ssrc]!.withheld == nil }.count
        voiceCount = Self.held(voiceCount, current: voicesNow, since: &participants[receiverID]!.moreVoicesSince, at: now, hold: configuration.layerUpHold)
        // A receiver that has sent no congestion feedback yet (transport-cc or a loss report) has
        // no estimate, only the start guess: nothing is withheld or paused on a guess, as an SFU
        // without an estimate forwards everything; its layers still stay within the guess.
        let estimated = receiver.congestionFeedback
        if !estimated { voiceCount = voices.count }
        budget -= voices.prefix(voiceCount).reduce(0) { $0 + $1.rate }
        for (index, voice) in voices.enumerated() {
            setWithheld(index >= voiceCount, receiver: receiverID, ssrc: voice.ssrc)
        }

        guard !videos.isEmpty else { return }
        // Each video's lowest layer, in speaking order, while it fits; the rest pause.
        let videoRanks = speakingRanks(now: now, incumbents: Set(videos.filter { receiver.outgoing[$0.ssrc]!.simulcast?.paused == false }.map(\.from)))
        videos.sort { (videoRanks[$0.from, default: .max], $0.ssrc) < (videoRanks[$1.from, default: .max], $1.ssrc) }
        var chosen: [Int?] = videos.map { video in video.rates.firstIndex { $0 != nil } }
        var videoCount = 0
        for (index, video) in videos.enumerated() {
            guard let lowest = chosen[index] else {
                // No layer with a rate yet (it has not sent for half a second): it costs nothing and stays as it is.
                videoCount += 1
                continue
            }
            guard video.rates[lowest]! <= budget else { break }
            budget -= video.rates[lowest]!
            videoCount += 1
        }
        let videosNow = videos.filter { receiver.outgoing[$0.ssrc]!.simulcast?.paused == false }.count
        let allowed = estimated
            ? Self.held(videoCount, current: videosNow, since: &participants[receiverID]!.moreVideosSince, at: now, hold: configuration.layerUpHold)
            : videos.count
        for index in videos.indices.dropFirst(allowed) {
            if index < videoCount, let lowest = chosen[index] { budget += videos[index].rates[lowest]! }
            chosen[index] = nil
        }
        // Then one step up at a time while the budget lasts.
        var raised = true
        while raised {
            raised = false
            for index in videos.indices {
                guard let current = chosen[index],
                      let next = videos[index].rates.indices.first(where: { $0 > current && videos[index].rates[$0] != nil }) else { continue }
                let cost = videos[index].rates[next]! - videos[index].rates[current]!
                if cost <= budget {
                    budget -= cost
                    chosen[index] = next
                    raised = true
                }
            }
        }
        for (index, video) in videos.enumerated() {
            var layers = participants[receiverID]!.outgoing[video.ssrc]!.simulcast!
            setPaused(index >= allowed, &layers)
            if let desired = chosen[index] {
                let known = { (layer: Int) in video.rates.indices.contains(layer) && video.rates[layer] != nil }
                if desired < layers.target || !known(layers.target) {
                    layers.target = desired
                    layers.upSince = nil
                } else if desired > layers.target {
                    let since = layers.upSince ?? now
                    layers.upSince = since
                    if now - since >= configuration.layerUpHold {
                        layers.target = desired
                        layers.upSince = nil
                    }
                } else {
                    layers.upSince = nil
                }
            }
            participants[receiverID]!.outgoing[video.ssrc]!.simulcast = layers
        }
    }

    /// `wanted` of a kind (voices, videos), given `current` are sent now: fewer at once, more only
    /// once the estimate allowed more for ``ForwardingConfiguration/layerUpHold``.
    private static func held(_ wanted: Int, current: Int, since: inout Duration?, at now: Duration, hold: Duration) -> Int {
        guard wanted > current else {
            since = nil
            return wanted
        }
        let start = since ?? now
        since = start
        guard now - start >= hold else { return current }
        since = nil
        return wanted
    }

    private mutating func setWithheld(_ withhold: Bool, receiver: String, ssrc: UInt32) {
        let current = participants[receiver]!.outgoing[ssrc]!.withheld
        if withhold {
            if current == nil {
                participants[receiver]!.outgoing[ssrc]!.withheld = WithheldAudio()
                counters.audioWithheld += 1
            } else if current!.resuming {
                participants[receiver]!.outgoing[ssrc]!.withheld!.resuming = false
            }
        } else if let current, !current.resuming {
            if current.gap == nil {
                // Nothing was left out yet: the numbers run on as they were.
                participants[receiver]!.outgoing[ssrc]!.withheld = nil
            } else {
                participants[receiver]!.outgoing[ssrc]!.withheld!.resuming = true
            }
            counters.audioResumed += 1
        }
    }

    private mutating func setPaused(_ pause: Bool, _ layers: inout OutgoingLayers) {
        guard pause != layers.paused else { return }
        layers.paused = pause
        layers.upSince = nil
        // No layer feeds it now: when it resumes, the next key frame of the target layer starts
        // it again, its numbers continuing from the last packet sent (``admitLayerPacket``).
        layers.layer = nil
        if pause { counters.videoPauses += 1 } else { counters.videoResumes += 1 }
    }

    /// Whether a packet of a withheld audio stream goes out: not while withheld; the first one
    /// after the budget allows the stream again takes the number and timestamp the first
    /// withheld packet would have had, plus the time since (RFC 3550 §5.1: the receiver sees a
    /// pause, as with discontinuous transmission, not a loss).
    mutating func admitWithheld(_ packet: RTPPacket, receiver: String, outgoingSSRC: UInt32, now: Duration) -> Bool {
        var stream = participants[receiver]!.outgoing[outgoingSSRC]!
        guard let withheld = stream.withheld else { return true }
        guard withheld.resuming else {
            if withheld.gap == nil {
                stream.withheld!.gap = (packet.sequenceNumber &+ stream.sequenceDelta, packet.timestamp &+ stream.timestampDelta, now)
                participants[receiver]!.outgoing[outgoingSSRC] = stream
            }
            return false
        }
        if let gap = withheld.gap {
            stream.sequenceDelta = gap.sequence &- packet.sequenceNumber
            let elapsed = UInt32(clamping: max(0, Int(((now - gap.at).seconds * Self.audioClockRate).rounded())))
            stream.timestampDelta = gap.timestamp &+ elapsed &- packet.timestamp
        }
        stream.withheld = nil
        participants[receiver]!.outgoing[outgoingSSRC] = stream
        return true
    }

    /// The senders whose voice `receiver`'s budget leaves out now, by id.
    public func withheldVoices(to receiver: String) -> [String] {
        guard let participant = participants[receiver] else { return [] }
        return participant.outgoing.values.filter { $0.withheld.map { !$0.resuming } ?? false }.map(\.from).sorted()
    }

    /// How many of the streams sent to receivers are paused video and withheld audio now (the
    /// `/metrics` gauges).
    public var squeezedStreams: (pausedVideo: Int, withheldAudio: Int) {
        var video = 0, audio = 0
        for participant in participants.values {
            for stream in participant.outgoing.values where stream.binding != nil {
                if stream.simulcast?.paused == true { video += 1 }
                if let withheld = stream.withheld, !withheld.resuming { audio += 1 }
            }
        }
        return (video, audio)
    }
}
