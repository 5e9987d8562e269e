import Foundation
import Hummingbird
import NIOCore

/// The browser page the node serves: its copy embedded in the binary (WebPage+Files.swift,
/// generated from web/ by scripts/embed-web), or a directory given with `web-root` for
/// development, which wins. The embedded copy is what makes an installed binary serve the page
/// with no source tree next to it; SwiftPM resources were not taken because on Linux their
/// bundle is looked up next to the executable, so `make install` would have to install it too.
struct WebPage: Sendable {
    private enum Source: Sendable {
        case embedded([String: Data])
        case directory(WebRoot)
    }

    private let source: Source

    /// The page of `web-root`, or the embedded one when `directory` is nil.
    init(directory: String?) {
        source = directory.map { .directory(WebRoot(directory: $0)) } ?? .embedded(Self.embedded)
    }

    /// The embedded files by path below web/ (`app.js`, `index.html`).
    static let embedded: [String: Data] = Dictionary(uniqueKeysWithValues: embeddedFiles.map { file in
        // Written by scripts/embed-web with Python's base64 encoder: always valid.
        (file.path, Data(base64Encoded: file.base64)!)
    })

    /// Where the page comes from, for the log.
    var origin: String {
        switch source {
        case .embedded: "embedded in the binary"
        case .directory(let root): root.directory
        }
    }

    /// Whether there is a page at all (a `web-root` without index.html falls back to the status page at `/`).
    var hasPage: Bool {
        switch source {
        case .embedded(let files): files["index.html"] != nil
        case .directory(let root): root.hasPage
        }
    }

    /// The response for a GET of `requestPath`: the file, or 404.
    func response(for requestPath: String) -> Response {
        switch source {
        case .directory(let root):
            return root.response(for: requestPath)
        case .embedded(let files):
            guard let path = Self.embeddedPath(for: requestPath), let data = files[path] else { return WebRoot.notFound }
            return WebRoot.fileResponse(data, contentType: WebRoot.contentType(ofPath: path))
        }
    }

    /// The key of the embedded file a request path names (`/` is `index.html`). Embedded files
    /// come from a fixed list, so a path with `..` simply names none; it is refused anyway, as
    /// `WebRoot` refuses it.
    static func embeddedPath(for requestPath: String) -> String? {
        guard let decoded = requestPath.removingPercentEncoding else { return nil }
        var components = decoded.split(separator: "/", omittingEmptySubsequences: true)
        if decoded.hasSuffix("/") || components.isEmpty { components.append("index.html") }
        guard !components.contains(where: { $0.hasPrefix(".") || $0.contains("\\") || $0.contains("\0") }) else { return nil }
        return components.joined(separator: "/")
    }
}
