import Foundation
import Testing
@testable import MeshNode

/// The page embedded in the binary (scripts/embed-web) is the page of web/, byte for byte, and
/// is served as the directory would be: an installed binary with no source tree serves the same page.
@Suite struct WebPageEmbeddingTests {
    /// web/'s files by path, hidden ones left out (as scripts/embed-web does).
    func webFiles() throws -> [String: Data] {
        let root = URL(fileURLWithPath: WebRoot.defaultDirectory)
        let enumerator = try #require(FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey],
                                                                     options: [.skipsHiddenFiles]))
        var files: [String: Data] = [:]
        for case let url as URL in enumerator {
            guard try url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile == true else { continue }
            let relative = String(url.standardizedFileURL.path.dropFirst(root.standardizedFileURL.path.count + 1))
            files[relative] = try Data(contentsOf: url)
        }
        return files
    }

    @Test("the embedded copy equals web/ (run scripts/embed-web after editing the page)")
    func embeddedEqualsWeb() throws {
        let web = try webFiles()
        #expect(web["index.html"] != nil && web["app.js"] != nil)
        #expect(Set(WebPage.embedded.keys) == Set(web.keys), "files differ: run scripts/embed-web")
        for (path, data) in web {
            #expect(WebPage.embedded[path] == data, "\(path) differs from web/: run scripts/embed-web")
        }
    }

    @Test("the embedded page: / is index.html, every file with its content type, nothing else")
    func servesEmbedded() throws {
        let page = WebPage(directory: nil)
        #expect(page.hasPage)
        let index = page.response(for: "/")
        #expect(index.status == .ok)
        #expect(index.headers[.contentType] == "text/html; charset=utf-8")
        for (path, expected) in [("app.js", "text/javascript; charset=utf-8"), ("style.css", "text/css; charset=utf-8"),
                                 ("icon.svg", "image/svg+xml")] {
            #expect(page.response(for: "/" + path).headers[.contentType] == expected)
        }
        // No file of the embedded page falls back to octet-stream: each has a known type.
        for path in WebPage.embedded.keys {
            #expect(WebRoot.contentType(ofPath: path) != "application/octet-stream", "\(path) has no content type")
        }
        for path in ["/../Package.swift", "/%2e%2e/Package.swift", "/.env", "/missing.js", "/app.js/x"] {
            #expect(page.response(for: path).status == .notFound, "\(path)")
        }
    }

    @Test("web-root still overrides the embedded page")
    func webRootOverrides() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshnode-webroot-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "<!doctype html><title>dev</title>".write(to: directory.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        var settings = NodeSettings()
        settings.webRoot = directory.path
        let page = WebPage(directory: try NodeConfiguration(settings).webRoot)
        #expect(page.response(for: "/app.js").status == .notFound)
        #expect(try NodeConfiguration(NodeSettings()).webRoot == nil)
    }
}

/// `--print-example-config` and `--check-config`, made from the settings table.
@Suite struct ExampleConfigTests {
    @Test("the example config names every setting, commented out, and as installed sets nothing")
    func everyKeyCommented() throws {
        let text = NodeSettings.exampleConfig
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for setting in NodeSettings.all {
            #expect(lines.contains { $0.hasPrefix("#\(setting.name): ") }, "no line for \(setting.name)")
        }
        #expect(try NodeSettings.parse(yaml: text) == NodeSettings())
    }

    @Test("each example value that is not a placeholder is valid for its key", arguments: NodeSettings.all.map(\.name))
    func exampleValuesAreValid(name: String) throws {
        let setting = try #require(NodeSettings.setting(named: name))
        let value = setting.exampleValue
        // Placeholders (INTEGER, NUMBER, TEXT, [VALUE]) stand for a value the operator chooses.
        if value.uppercased() == value, value.contains(where: \.isLetter) { return }
        let settings = try NodeSettings.parse(yaml: "\(name): \(value)")
        #expect(setting.value(in: settings) != nil)
        _ = try NodeConfiguration(settings)
    }

    @Test("defaults are read from the help text")
    func defaultsFromHelp() throws {
        func stated(_ name: String) -> String? { NodeSettings.setting(named: name)?.defaultDescription }
        #expect(stated("stun-port") == "3478")
        #expect(stated("log-level") == "info")
        #expect(stated("status-access") == "local")
        #expect(stated("rfc5780") == "off")
        #expect(stated("room-rule") == "open")
        #expect(stated("bind") == "127.0.0.1 and ::1")
    }

    @Test("the effective settings name each value's origin; secrets are not printed")
    func effective() throws {
        let file = try NodeSettings.parse(yaml: "stun-port: 4000\nrealm: file\nturn-secret: s3cret\nuser: [\"alice:pw\"]")
        var flags = NodeSettings()
        flags.realm = "flag"
        flags.tlsPort = -1
        let configuration = try NodeConfiguration(flags.overriding(file))
        let rows = Dictionary(uniqueKeysWithValues: NodeSettings.effective(flags: flags, file: file, configuration: configuration)
            .map { ($0.key, "\($0.value) (\($0.origin.rawValue))") })
        #expect(rows.count == NodeSettings.all.count)
        #expect(rows["stun-port"] == "4000 (file)")
        #expect(rows["realm"] == "flag (flag)")
        #expect(rows["tls-port"] == "-1 (--no-tls) (flag)")
        #expect(rows["http-port"] == "8080 (default)")
        #expect(rows["data-dir"] == "\(configuration.signaling.dataDirectory) (default)")
        let report = NodeSettings.effectiveReport(flags: flags, file: file, configuration: configuration)
        #expect(!report.contains("s3cret") && !report.contains("pw"))
        #expect(report.contains("alice:(not shown)"))
    }
}
