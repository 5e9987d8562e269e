/// A session description (RFC 8866 §5) as WebRTC exchanges it in offers and answers (JSEP, RFC 8829).
///
/// Parse with ``init(parsing:)``, produce text with ``serialized``. Attributes keep their order, so a
/// description that was parsed serializes to the same lines (in canonical spacing).
public struct SessionDescription: Hashable, Sendable {
    /// `v=`: always 0 (RFC 8866 §5.1).
    public var version: Int
    /// `o=` (RFC 8866 §5.2).
    public var origin: Origin
    /// `s=` (RFC 8866 §5.3); browsers send `-`.
    public var sessionName: String
    /// `i=` (RFC 8866 §5.4).
    public var information: String?
    /// `u=` (RFC 8866 §5.5).
    public var uri: String?
    /// `e=` (RFC 8866 §5.6).
    public var emails: [String]
    /// `p=` (RFC 8866 §5.6).
    public var phones: [String]
    /// `c=` at session level (RFC 8866 §5.7).
    public var connection: ConnectionData?
    /// `b=` at session level (RFC 8866 §5.8).
    public var bandwidths: [Bandwidth]
    /// `t=` lines with their `r=` lines (RFC 8866 §5.9–5.10); browsers send one `t=0 0`.
    public var timings: [Timing]
    /// `z=` (RFC 8866 §5.11), kept as text.
    public var timeZones: String?
    /// `k=` (RFC 8866 §5.12, obsolete), kept as text.
    public var encryptionKey: String?
    /// Session-level `a=` lines in order.
    public var attributes: [SDPAttribute]
    /// The media sections (`m=` and what follows), in order.
    public var media: [MediaDescription]

    /// Creates a description.
    public init(
        version: Int = 0, origin: Origin, sessionName: String = "-", information: String? = nil, uri: String? = nil,
        emails: [String] = [], phones: [String] = [], connection: ConnectionData? = nil, bandwidths: [Bandwidth] = [],
        timings: [Timing] = [Timing(start: 0, stop: 0)], timeZones: String? = nil, encryptionKey: String? = nil,
        attributes: [SDPAttribute] = [], media: [MediaDescription] = []
    ) {
        self.version = version
        self.origin = origin
        self.sessionName = sessionName
        self.information = information
        self.uri = uri
        self.emails = emails
        self.phones = phones
        self.connection = connection
        self.bandwidths = bandwidths
        self.timings = timings
        self.timeZones = timeZones
        self.encryptionKey = encryptionKey
        self.attributes = attributes
        self.media = media
    }

    /// The `o=` line (RFC 8866 §5.2).
    public struct Origin: Hashable, Sendable {
        /// The user name; `-` from browsers.
        public var username: String
        /// A numeric session identifier (may exceed 64 bits in theory, so kept as text).
        public var sessionID: String
        /// Incremented whenever the session changes (JSEP §5.2.2).
        public var sessionVersion: String
        public var networkType: String
        public var addressType: String
        public var address: String

        public init(username: String = "-", sessionID: String, sessionVersion: String, networkType: String = "IN", addressType: String = "IP4", address: String = "127.0.0.1") {
            self.username = username
            self.sessionID = sessionID
            self.sessionVersion = sessionVersion
            self.networkType = networkType
            self.addressType = addressType
            self.address = address
        }
    }

    /// A `c=` line (RFC 8866 §5.7).
    public struct ConnectionData: Hashable, Sendable {
        public var networkType: String
        public var addressType: String
        /// The address, with any `/ttl/count` suffix.
        public var address: String

        public init(networkType: String = "IN", addressType: String = "IP4", address: String = "0.0.0.0") {
            self.networkType = networkType
            self.addressType = addressType
            self.address = address
        }
    }

    /// A `b=` line (RFC 8866 §5.8): `AS`, `CT`, or `TIAS` (RFC 3890) with a value.
    public struct Bandwidth: Hashable, Sendable {
        public var type: String
        public var value: UInt64

        public init(type: String, value: UInt64) {
            self.type = type
            self.value = value
        }
    }

    /// A `t=` line and its `r=` repeat lines (RFC 8866 §5.9–5.10).
    public struct Timing: Hashable, Sendable {
        public var start: UInt64
        public var stop: UInt64
        /// `r=` lines, kept as text.
        public var repeats: [String]

        public init(start: UInt64, stop: UInt64, repeats: [String] = []) {
            self.start = start
            self.stop = stop
            self.repeats = repeats
        }
    }

    /// The first session-level `a=group:BUNDLE` (RFC 9143 §7.1): the mids sent over one transport.
    public var bundleGroup: [String]? {
        for case .group(let group) in attributes where group.semantics == "BUNDLE" { return group.identifiers }
        return nil
    }

    /// Whether `media` (one of this description's sections) carries media: a port other than 0,
    /// or port 0 with `a=bundle-only` and a mid in the BUNDLE group — in an offer a section that
    /// is to be bundled only (RFC 8843 §7.2.1, JSEP RFC 8829 §5.2.1 for `max-bundle`), in an
    /// answer one accepted into the bundle (§7.3.1). Port 0 alone rejects it (RFC 3264 §6).
    public func carriesMedia(_ media: MediaDescription) -> Bool {
        if media.port != 0 { return true }
        guard media.isBundleOnly, let mid = media.mid, let bundle = bundleGroup else { return false }
        return bundle.contains(mid)
    }

    /// The media section with `a=mid:` `mid`.
    public func media(withMid mid: String) -> MediaDescription? {
        media.first { $0.mid == mid }
    }
}
