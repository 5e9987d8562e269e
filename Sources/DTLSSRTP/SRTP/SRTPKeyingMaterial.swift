/// The SRTP master keys and salts of one DTLS-SRTP association, split from the keying
/// material that DTLS exports with the label `EXTRACTOR-dtls_srtp` (RFC 5764 §4.2, RFC 5705).
public struct SRTPKeyingMaterial: Sendable, Hashable {
    /// The label RFC 5764 §4.2 registers for the exporter.
    public static let exporterLabel = "EXTRACTOR-dtls_srtp"

    /// The negotiated profile.
    public var profile: SRTPProfile
    /// Master key followed by master salt that this side protects with.
    public var localKeyAndSalt: [UInt8]
    /// Master key followed by master salt that this side unprotects the peer's packets with.
    public var remoteKeyAndSalt: [UInt8]

    /// How many bytes to export for `profile`: two keys and two salts.
    public static func exportLength(for profile: SRTPProfile) -> Int {
        2 * (profile.masterKeyLength + profile.masterSaltLength)
    }

    /// Splits exported keying material laid out as RFC 5764 §4.2 says:
    /// `client_write_SRTP_master_key | server_write_SRTP_master_key |
    /// client_write_SRTP_master_salt | server_write_SRTP_master_salt`. The DTLS client
    /// protects with the client keys, the server with the server keys.
    ///
    /// - Throws: ``TransportError`` `invalidArgument` when `exported` has the wrong length.
    public init(exported: [UInt8], profile: SRTPProfile, role: DTLSRole) throws(TransportError) {
        let keyLength = profile.masterKeyLength
        let saltLength = profile.masterSaltLength
        guard exported.count == Self.exportLength(for: profile) else {
            throw TransportError(.invalidArgument, "\(profile.openSSLName) needs \(Self.exportLength(for: profile)) bytes of keying material, got \(exported.count)")
        }
        let clientKey = exported[0..<keyLength]
        let serverKey = exported[keyLength..<2 * keyLength]
        let clientSalt = exported[2 * keyLength..<2 * keyLength + saltLength]
        let serverSalt = exported[2 * keyLength + saltLength..<2 * keyLength + 2 * saltLength]
        let client = Array(clientKey + clientSalt)
        let server = Array(serverKey + serverSalt)
        self.profile = profile
        self.localKeyAndSalt = role == .client ? client : server
        self.remoteKeyAndSalt = role == .client ? server : client
    }
}
