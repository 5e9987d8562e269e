public import MeshCore

/// The certificates layer's errors.
public enum CertificateLayer: ErrorLayer { public static let name = "CertificateError" }

/// Why a certificate could not be made or loaded.
public typealias CertificateError = LayerError<CertificateLayer>

extension LayerError.Code where Layer == CertificateLayer {
    /// OpenSSL could not generate a key or sign a certificate.
    public static let generationFailed = Self("generationFailed")
}
