import Hummingbird
import NIOCore

extension NodeReadiness {
    /// `/healthz`: 200 once the TURN listeners and the HTTP server are up, 503 before and once
    /// a graceful stop began (`NodeDrain`). It says
    /// nothing but that, so it is open to everyone (unlike `/status`, `StatusAccess`), and a
    /// load balancer or a deploy script can poll it.
    func healthResponse() -> Response {
        let ready = isReady
        return Response(status: ready ? .ok : .serviceUnavailable,
                        headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(string: ready ? "ok\n" : "not ready: starting or stopping\n")))
    }
}
