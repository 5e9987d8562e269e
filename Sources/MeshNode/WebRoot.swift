import Foundation
import Hummingbird
import NIOCore
import Codecs

/// The browser page's files (HTML, CSS, ES modules) served from a directory: `web-root` (the
/// default is the copy embedded in the binary, ``WebPage``). Only regular files inside the
/// directory are served: no `..`, no hidden files, no symbolic link that leads outside.
struct WebRoot: Sendable {
    /// The directory, with symbolic links resolved.
    let directory: String

    /// `web/` of the source tree this binary was built from: what the embedded copy must equal.
    static let defaultDirectory: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("web").path

    init(directory: String) {
        self.directory = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
    }

    /// Whether the directory holds the page at all (a binary moved away from its source tree
    /// falls back to the status page at `/`).
    var hasPage: Bool { FileManager.default.fileExists(atPath: directory + "/index.html") }

    /// Content types by file extension: the ones a plain HTML/CSS/ES-module page uses. ES
    /// modules must come as JavaScript or the browser refuses to run them.
    static let contentTypes: [String: String] = [
        "html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "mjs": "text/javascript; charset=utf-8",
        "css": "text/css; charset=utf-8", "json": "application/json", "svg": "image/svg+xml", "png": "image/png",
        "ico": "image/x-icon", "webmanifest": "application/manifest+json", "txt": "text/plain; charset=utf-8",
    ]

    /// The file for a request path (`/` is `index.html`), or nil when there is none or the
    /// path tries to leave the directory.
    func file(for requestPath: String) -> (path: String, contentType: String)? {
        guard let decoded = requestPath.removingPercentEncoding else { return nil }
        var components: [Substring] = decoded.split(separator: "/", omittingEmptySubsequences: true)
        if decoded.hasSuffix("/") || components.isEmpty { components.append("index.html") }
        for component in components {
            // ".." and "." would walk the tree; hidden files (".git") are never part of the page.
            if component.hasPrefix(".") || component.contains("\\") || component.contains("\0") { return nil }
        }
        let joined = directory + "/" + components.joined(separator: "/")
        let resolved = URL(fileURLWithPath: joined).resolvingSymlinksInPath().path
        guard resolved.hasPrefix(directory + "/") else { return nil }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory), !isDirectory.boolValue else { return nil }
        return (resolved, Self.contentType(ofPath: resolved))
    }

    /// The content type of a file by its extension; unknown ones are plain bytes.
    static func contentType(ofPath path: String) -> String {
        contentTypes[(path as NSString).pathExtension.lowercased()] ?? "application/octet-stream"
    }

    /// The response for a GET of `requestPath`: the file, or 404.
    func response(for requestPath: String) -> Response {
        guard let file = file(for: requestPath), let data = FileManager.default.contents(atPath: file.path) else {
            return Self.notFound
        }
        return Self.fileResponse(data, contentType: file.contentType)
    }

    static var notFound: Response {
        Response(status: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: "not found\n")))
    }

    /// A file of the page, from a directory or embedded.
    static func fileResponse(_ data: Data, contentType: String) -> Response {
        // The page has no build step and no version in its file names: make browsers revalidate.
        Response(status: .ok, headers: [.contentType: contentType, .cacheControl: "no-cache",
                                        .init("X-Content-Type-Options")!: "nosniff"],
                 body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
