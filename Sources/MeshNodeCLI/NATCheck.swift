import ArgumentParser
import Foundation
import ICE
import NIOCore

/// `meshnode nat-check`: RFC 5780 NAT behaviour discovery against a STUN server.
struct NATCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nat-check",
        abstract: "Measure this host's NAT mapping and filtering behaviour (RFC 5780).",
        discussion: """
        Sends Binding requests from one UDP socket to a STUN server that does RFC 5780 (it \
        answers with OTHER-ADDRESS and honours CHANGE-REQUEST: coturn listening on two addresses, \
        or a node started with --rfc5780 and two --bind addresses) and prints \
        the NAT type by the names of DESIGN.md: eim-eif, eim-adf, eim-apdf, apdm-apdf, \
        udp-blocked, none (other combinations by the same rule, such as adm-apdf; none-adf and \
        none-apdf for a public address behind a filtering firewall; unknown when the server \
        cannot tell). Exit status: 0 with a verdict, 1 when the behaviour stays unknown.
        """
    )

    @Option(help: "STUN server HOST[:PORT] (default port 3478).")
    var stun: String
    @Option(help: "Alternate server HOST[:PORT] used for the mapping tests instead of the server's OTHER-ADDRESS.")
    var altStun: String?
    @Option(help: "Local address to bind, IP[:PORT] (default: the source address towards the server, a free port).")
    var local: String?
    @Option(help: "Seconds each test waits for its response (default 3).")
    var timeout: Double = 3
    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        guard timeout > 0, timeout <= 30 else { throw ValidationError("--timeout must be in (0, 30] seconds") }
        let report: NATBehaviorReport
        do {
            let server = try STUNServerSpec(parsing: stun).resolve()
            let alternate = try altStun.map { text throws(ICEError) in try STUNServerSpec(parsing: text).resolve() }
            let localAddress = try local.map { text throws(ICEError) in try STUNServerSpec(parsing: text, defaultPort: 0).resolveLocal() }
            report = try NATCheckRunner.run(server: server, alternateServer: alternate, localAddress: localAddress,
                                            testTimeout: .milliseconds(Int(timeout * 1000)))
        } catch {
            throw ValidationError(error.reason)
        }
        print(json ? Self.json(report) : Self.text(report))
        if !report.isComplete { throw ExitCode(1) }
    }

    static func text(_ report: NATBehaviorReport) -> String {
        var lines = ["NAT type: \(report.name)"]
        lines.append("  mapping:   " + (report.mapping.map { "\($0.rawValue) (\($0.meaning))" } ?? (report.udpBlocked ? "-" : "unknown")))
        lines.append("  filtering: " + (report.filtering.map { "\($0.rawValue) (\($0.meaning))" } ?? (report.udpBlocked ? "-" : "unknown")))
        lines.append("  local:     \(report.localAddress.compactDescription)")
        lines.append("  mapped:    \(report.mappedAddress?.compactDescription ?? "-")")
        lines.append("  server:    \(report.server.compactDescription), other address \(report.otherAddress?.compactDescription ?? "-")")
        for record in report.tests {
            var change = ""
            if record.changeIP || record.changePort {
                change = " change " + [record.changeIP ? "ip" : nil, record.changePort ? "port" : nil].compactMap { $0 }.joined(separator: "+")
            }
            let target = "-> \(record.destination.compactDescription)\(change)"
            lines.append("  \(record.test.rawValue.padding(toLength: 17, withPad: " ", startingAt: 0)) \(target.padding(toLength: 38, withPad: " ", startingAt: 0)) \(record.summary)")
        }
        lines += report.notes.map { "  note: \($0)" }
        return lines.joined(separator: "\n")
    }

    static func json(_ report: NATBehaviorReport) -> String {
        let object: [String: Any] = [
            "name": report.name,
            "mapping": report.mapping?.rawValue ?? NSNull(),
            "filtering": report.filtering?.rawValue ?? NSNull(),
            "udpBlocked": report.udpBlocked,
            "local": report.localAddress.compactDescription,
            "mapped": report.mappedAddress?.compactDescription ?? NSNull(),
            "server": report.server.compactDescription,
            "otherAddress": report.otherAddress?.compactDescription ?? NSNull(),
            "tests": report.tests.map { record -> [String: Any] in
                var test: [String: Any] = [
                    "test": record.test.rawValue,
                    "destination": record.destination.compactDescription,
                    "changeIP": record.changeIP,
                    "changePort": record.changePort,
                    "transmissions": record.transmissions,
                    "result": record.summary,
                ]
                switch record.outcome {
                case let .response(source, mapped, _, _):
                    test["outcome"] = "response"
                    test["source"] = source.compactDescription
                    test["mapped"] = mapped.compactDescription
                case let .error(code, _):
                    test["outcome"] = "error"
                    test["code"] = code
                case .malformed:
                    test["outcome"] = "malformed"
                case .timeout:
                    test["outcome"] = "timeout"
                }
                return test
            },
            "notes": report.notes,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

extension STUNServerSpec {
    /// A numeric local address to bind (no name resolution).
    func resolveLocal() throws(ICEError) -> SocketAddress {
        do {
            return try SocketAddress(ipAddress: host, port: port)
        } catch {
            throw ICEError(.invalidServer, "--local needs a numeric address, not \(host)")
        }
    }
}
