import ArgumentParser
import Foundation
import ICE
import MeshNode
import NIOCore
import STUN
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `meshnode status`: the mesh as one node sees it (its `GET /mesh`), as a table or JSON;
/// with `--probe`, also the relays ordered by round trip from where this command runs.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the mesh as a node sees it: nodes, reachability, relays, load, round trips, links.",
        discussion: "Reads http://HOST:PORT/mesh of the node (a ws:// URL works too)."
    )

    @Option(help: "The node: http://HOST:PORT or ws://HOST:PORT/ws (default http://127.0.0.1:8080).")
    var node = "http://127.0.0.1:8080"
    @Flag(help: "Print the node's answer as JSON.")
    var json = false
    @Flag(help: "Also measure the STUN round trip from here to every relay and print them nearest first (RelaySelector).")
    var probe = false
    @Option(help: "File holding the node's status token (its status-token-file), for a node on another host.")
    var tokenFile: String?

    func run() async throws {
        let url = try Self.meshURL(node)
        var request = URLRequest(url: url)
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8),
                  let token = text.split(whereSeparator: \.isNewline).first, !token.isEmpty else {
                throw ValidationError("cannot read a token from \(tokenFile)")
            }
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw ValidationError("cannot read \(url): \(error.localizedDescription)")
        }
        if let http = response as? HTTPURLResponse, http.statusCode != 200 {
            // The node's text without control characters: it must not drive the terminal.
            let text = String(String.UnicodeScalarView(String(decoding: data.prefix(200), as: UTF8.self).unicodeScalars
                .filter { !CharacterSet.controlCharacters.contains($0) }))
            throw ValidationError("\(url) answered \(http.statusCode): \(text)"
                                  + (http.statusCode == 401 || http.statusCode == 403 ? " (give --token-file, or run this on the node's host)" : ""))
        }
        let status: MeshStatus
        do {
            status = try JSONDecoder().decode(MeshStatus.self, from: data)
        } catch {
            throw ValidationError("\(url) did not answer with a mesh status: \(error)")
        }
        let ranked = probe ? await Self.probe(status) : []
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
            if probe {
                let choice = ranked.map { ProbeLine(node: $0.candidate.id, rttMs: $0.rttMilliseconds) }
                print(TerminalText.safe(String(decoding: try encoder.encode(StatusWithProbe(status: status, probe: choice)), as: UTF8.self), json: true))
            } else {
                print(TerminalText.safe(String(decoding: try encoder.encode(status), as: UTF8.self), json: true))
            }
            return
        }
        // Every field of the status comes from node records other nodes sent: printed safe.
        func show(_ line: String) { print(TerminalText.safe(line)) }
        show("node \(status.node)  reachability \(status.reachability)  relay \(status.relay ? "yes" : "no")"
              + (status.checkedBy.isEmpty ? "" : "  checked by \(status.checkedBy.joined(separator: ", "))")
              + (status.dialbackMs.map { String(format: "  dial-back %.0f ms", $0) } ?? ""))
        show("links: \(status.links.isEmpty ? "none" : status.links.joined(separator: ", "))")
        show("relays handed out: \(status.relays.isEmpty ? "none" : status.relays.joined(separator: ", "))")
        if let unproven = status.unproven, unproven > 0 {
            show("records held unproven (their address could not be dialled; not used): \(unproven)")
        }
        let header = ["NODE", "REACHABILITY", "RELAY", "LOAD", "RTT", "LINKED", "VERSION", "EXPIRES"]
        var rows = [header]
        for node in status.nodes {
            rows.append([node.node + (node.local ? " (this)" : ""), node.reachability, node.relay ? "yes" : "no", "\(node.load)/\(node.capacity)",
                         node.local ? "-" : (node.rttMs.map { String(format: "%.1f ms", $0) } ?? "no answer"),
                         node.local ? "-" : (node.linked ? "yes" : "no"), node.version, node.expiresIn.map { "\(Int($0)) s" } ?? "-"]
                .map { TerminalText.safe($0) })
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            show(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
        if probe {
            show("relays from here, nearest first:")
            if ranked.isEmpty { show("  none answered") }
            for entry in ranked {
                show("  \(entry.candidate.id)  " + (entry.rttMilliseconds.map { String(format: "%.1f ms (%d/%d answered)", $0, entry.answered, entry.sent) } ?? "no answer"))
            }
        }
    }

    struct ProbeLine: Codable { var node: String; var rttMs: Double? }
    struct StatusWithProbe: Codable { var status: MeshStatus; var probe: [ProbeLine] }

    /// The relays of the status (every node with `relay`), measured from here.
    static func probe(_ status: MeshStatus) async -> [RelaySelector.Ranked] {
        let candidates = status.nodes.filter(\.relay).compactMap { node -> RelaySelector.Candidate? in
            guard let url = node.stun.compactMap(ICEServerURI.init).first,
                  let address = try? SocketAddress(ipAddress: url.host, port: url.port) else { return nil }
            return RelaySelector.Candidate(id: node.node, stun: address, load: node.load, capacity: node.capacity)
        }
        return await RelaySelector(probes: 5, timeout: .milliseconds(800), keepUnanswered: true).rank(candidates)
    }

    static func meshURL(_ text: String) throws -> URL {
        var base = text
        if base.hasPrefix("ws://") { base = "http://" + base.dropFirst(5) }
        if base.hasPrefix("wss://") { base = "https://" + base.dropFirst(6) }
        if !base.contains("://") { base = "http://" + base }
        guard var components = URLComponents(string: base), components.host != nil else {
            throw ValidationError("'\(text)' is not http://HOST:PORT")
        }
        components.path = "/mesh"
        components.query = nil
        guard let url = components.url else { throw ValidationError("'\(text)' is not http://HOST:PORT") }
        return url
    }
}
