import Media

/// How a peer takes part in calls: what it sends, what it records, how it gathers candidates.
public struct CallOptions: Sendable {
    /// Video this side sends (nil: none). Desktop calls send ``desktopSource`` instead.
    public var videoSource: VideoSourceSpec?
    /// Audio this side sends (nil: none).
    public var audioSource: AudioSourceSpec?
    /// What a desktop share sends.
    public var desktopSource: VideoSourceSpec
    /// Where to record what arrives, one video and one audio file per call; nil records nothing.
    public var recordDirectory: String?
    /// IP literals to gather host candidates on; empty for every interface.
    public var localAddresses: [String]
    /// Use only TURN relay candidates.
    public var relayOnly: Bool
    /// VP8 start bitrate (the rate controller moves it).
    public var videoBitrateKbps: Int
    /// How long call setup may take, from the call request to media, before the call is given up.
    public var setupTimeout: Duration
    /// How long an ICE restart may take before another one is tried.
    public var restartTimeout: Duration
    /// How long nothing may arrive on a connected call before its path counts as dead.
    public var silenceLimit: Duration
    /// Watch this host's addresses (Linux rtnetlink, ``NetworkMonitor``): when the address a
    /// call or the signaling connection uses goes away, restart and reconnect at once.
    public var watchNetwork: Bool

    public init(videoSource: VideoSourceSpec? = .testPattern(width: 640, height: 360, framesPerSecond: 30),
                audioSource: AudioSourceSpec? = .tone(frequency: 440),
                desktopSource: VideoSourceSpec = .screen(display: nil, framesPerSecond: 15),
                recordDirectory: String? = nil, localAddresses: [String] = [], relayOnly: Bool = false,
                videoBitrateKbps: Int = 800, setupTimeout: Duration = .seconds(30), restartTimeout: Duration = .seconds(8),
                silenceLimit: Duration = .seconds(3), watchNetwork: Bool = true) {
        self.videoSource = videoSource
        self.audioSource = audioSource
        self.desktopSource = desktopSource
        self.recordDirectory = recordDirectory
        self.localAddresses = localAddresses
        self.relayOnly = relayOnly
        self.videoBitrateKbps = videoBitrateKbps
        self.setupTimeout = setupTimeout
        self.restartTimeout = restartTimeout
        self.silenceLimit = silenceLimit
        self.watchNetwork = watchNetwork
    }
}

/// Where a call stands.
public enum CallState: String, Sendable, Codable {
    /// The request went out; waiting for accept.
    case ringing
    /// Accepted; offer/answer, ICE and DTLS under way.
    case connecting
    /// Media flows.
    case connected
    /// The path broke; an ICE restart is under way and media resumes when it completes.
    case reconnecting
    /// Over.
    case ended
}
