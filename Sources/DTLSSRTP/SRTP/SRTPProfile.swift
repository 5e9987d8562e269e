/// The DTLS-SRTP protection profiles we negotiate in the `use_srtp` extension.
public enum SRTPProfile: String, Sendable, Hashable, CaseIterable {
    /// `SRTP_AES128_CM_HMAC_SHA1_80` (RFC 5764 §4.1.2, id 0x0001): AES-128 counter mode and an
    /// 80-bit HMAC-SHA1 tag (RFC 3711 §4). What browsers pick.
    case aes128CMHMACSHA1_80
    /// `SRTP_AEAD_AES_128_GCM` (RFC 7714 §14.2, id 0x0007): AES-128-GCM with a 16-byte tag.
    case aeadAES128GCM

    /// The name OpenSSL's `SSL_CTX_set_tlsext_use_srtp` takes.
    var openSSLName: String {
        switch self {
        case .aes128CMHMACSHA1_80: "SRTP_AES128_CM_SHA1_80"
        case .aeadAES128GCM: "SRTP_AEAD_AES_128_GCM"
        }
    }

    /// The two-byte `SRTPProtectionProfile` value in the `use_srtp` extension.
    public var identifier: UInt16 {
        switch self {
        case .aes128CMHMACSHA1_80: 0x0001
        case .aeadAES128GCM: 0x0007
        }
    }

    /// Creates a profile from its `use_srtp` identifier, or `nil` for one we do not speak.
    public init?(identifier: UInt64) {
        switch identifier {
        case 0x0001: self = .aes128CMHMACSHA1_80
        case 0x0007: self = .aeadAES128GCM
        default: return nil
        }
    }

    /// Master key length in bytes: 128 bits for both (RFC 5764 §4.1.2, RFC 7714 §12).
    public var masterKeyLength: Int { 16 }

    /// Master salt length in bytes: 112 bits for AES-CM (RFC 3711 §8.2), 96 bits for GCM
    /// (RFC 7714 §12).
    public var masterSaltLength: Int {
        switch self {
        case .aes128CMHMACSHA1_80: 14
        case .aeadAES128GCM: 12
        }
    }

    /// Bytes an SRTP packet grows by: the 10-byte HMAC-SHA1-80 tag (RFC 3711 §4.2) or the
    /// 16-byte GCM tag (RFC 7714 §7).
    public var rtpOverhead: Int {
        switch self {
        case .aes128CMHMACSHA1_80: 10
        case .aeadAES128GCM: 16
        }
    }
}
