import Foundation
import Media
import MeshNode

/// The live status line of a call on a terminal: one line rewritten in place at most once a
/// second (state, path, RTT, bitrates, loss, frames), nothing when stderr is not a terminal.
final class StatusLine: @unchecked Sendable {
    private let enabled: Bool
    private var last: ContinuousClock.Instant?

    init(enabled: Bool) {
        self.enabled = enabled && isatty(STDERR_FILENO) == 1
    }

    func note(_ text: String) {
        guard enabled else { return }
        write("\r\u{1B}[K\(TerminalText.safe(text))\n")
    }

    func update(_ report: CallReport, state: CallState) {
        guard enabled else { return }
        if let last, ContinuousClock.now - last < .seconds(1) { return }
        last = .now
        write("\r\u{1B}[K" + TerminalText.safe(Self.line(report, state: state.rawValue)))
    }

    func clear() {
        guard enabled else { return }
        write("\r\u{1B}[K")
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    static func line(_ report: CallReport, state: String) -> String {
        var parts = [state]
        if let path = report.path { parts.append("\(path.local)->\(path.remote)\(path.relay.map { " via \($0)" } ?? "")") }
        if let rtt = report.rttMs { parts.append(String(format: "rtt %.0f ms", rtt)) }
        for stream in report.streams {
            parts.append(String(format: "%@ ↑%.0f ↓%.0f kb/s %d/%d frames lost %d", stream.kind, stream.sendKbps, stream.receiveKbps,
                                stream.sentFrames, stream.receivedFrames, stream.lost))
        }
        return parts.joined(separator: " | ")
    }

    static func summary(_ report: CallReport) -> String {
        var lines = ["call \(report.call) to \(report.to): \(report.ok ? "ok" : "FAILED")\(report.error.map { " (\($0))" } ?? "")"]
        if let setup = report.setupMs { lines.append(String(format: "  setup %.0f ms (ICE %.0f ms, DTLS %.0f ms)", setup, report.iceMs ?? 0, report.dtlsMs ?? 0)) }
        if let path = report.path {
            lines.append("  path \(path.local) \(path.localAddress) <-> \(path.remote) \(path.remoteAddress) over \(path.transport)\(path.relay.map { ", relay \($0)" } ?? "")")
        }
        for stream in report.streams {
            lines.append("  \(stream.kind): sent \(stream.sentPackets) packets / \(stream.sentFrames) frames, received \(stream.receivedPackets) packets / \(stream.receivedFrames) frames, lost \(stream.lost), recovered \(stream.recovered)")
        }
        if let rtt = report.rttMs { lines.append(String(format: "  rtt %.1f ms, ICE restarts %d", rtt, report.iceRestarts)) }
        for file in report.files { lines.append("  recorded \(file)") }
        return lines.joined(separator: "\n")
    }
}
