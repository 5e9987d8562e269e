import Foundation
import Testing
@testable import MeshNode

/// The page's files as the node serves them: content types, `/` as index.html, and nothing
/// outside the web root.
@Suite struct WebRootTests {
    /// A web root with a page, a module, a hidden file, and a secret next to it.
    func makeRoot() throws -> (root: String, web: WebRoot) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("meshnode-web-\(UUID().uuidString)")
        let root = base.appendingPathComponent("web")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("lib"), withIntermediateDirectories: true)
        try "<!doctype html>".write(to: root.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        try "export {}".write(to: root.appendingPathComponent("lib/app.js"), atomically: true, encoding: .utf8)
        try "x".write(to: root.appendingPathComponent(".env"), atomically: true, encoding: .utf8)
        try "secret".write(to: base.appendingPathComponent("secret.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("escape.txt").path,
                                                   withDestinationPath: base.appendingPathComponent("secret.txt").path)
        return (root.path, WebRoot(directory: root.path))
    }

    @Test("serves index.html at / and ES modules as JavaScript")
    func contentTypes() throws {
        let (_, web) = try makeRoot()
        #expect(web.hasPage)
        #expect(web.file(for: "/")?.contentType == "text/html; charset=utf-8")
        #expect(web.file(for: "/lib/app.js")?.contentType == "text/javascript; charset=utf-8")
        #expect(web.file(for: "/lib/")?.path == nil)
    }

    @Test("no path leaves the web root: .., encoded .., hidden files, symbolic links out", arguments: [
        "/../secret.txt", "/%2e%2e/secret.txt", "/lib/..%2F..%2Fsecret.txt", "/.env", "/escape.txt", "/lib/%00app.js", "/..\\secret.txt",
    ])
    func traversal(path: String) throws {
        let (_, web) = try makeRoot()
        #expect(web.file(for: path) == nil)
        #expect(web.response(for: path).status == .notFound)
    }

    @Test("the default web root is the repository's web/ with the page")
    func defaultRoot() {
        #expect(WebRoot(directory: WebRoot.defaultDirectory).hasPage)
    }

    @Test("web-root must be a directory")
    func badWebRoot() {
        var settings = NodeSettings()
        settings.webRoot = "/nonexistent/web"
        #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(settings) }
    }
}
