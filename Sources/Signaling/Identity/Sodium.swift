internal import CSodium

/// libsodium, initialised once per process (`sodium_init` is idempotent and thread-safe, but
/// must have returned before any other call).
enum Sodium {
    private static let initialised: Bool = sodium_init() >= 0

    /// Makes sure `sodium_init` ran; libsodium cannot work without it.
    static func ready() {
        precondition(initialised, "libsodium failed to initialise")
    }

    /// Cryptographically secure random bytes (`randombytes_buf`).
    static func randomBytes(_ count: Int) -> [UInt8] {
        ready()
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, count) }
        return bytes
    }
}
