extension Duration {
    /// The duration in seconds as a floating-point number, for rate and filter arithmetic.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }

    /// The duration in milliseconds as a floating-point number.
    var milliseconds: Double { seconds * 1_000 }

    /// A duration from a floating-point number of seconds.
    static func seconds(_ value: Double) -> Duration {
        .nanoseconds(Int64((value * 1e9).rounded()))
    }
}
