import Logging
import MeshCore

extension SignalingHub {
    /// Logs a line about something a connection did, at most once per `LogLimiter.interval` for
    /// that connection and kind, with the number of lines left out since the last one.
    /// `connection` nil: one budget for the kind across all connections (for what anyone can
    /// cause by opening connection after connection).
    func logLimited(_ level: Logger.Level, _ message: Logger.Message, kind: String, connection: Int?, metadata: Logger.Metadata = [:]) {
        guard let suppressed = logLimits.allow("\(connection.map(String.init) ?? "*") \(kind)", now: now()) else { return }
        var metadata = metadata
        if let connection { metadata["connection"] = "\(connection)" }
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        logger.log(level: level, message, metadata: metadata)
    }
}
