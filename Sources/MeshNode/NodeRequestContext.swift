import Hummingbird
import NIOCore

/// The request context of the node's HTTP routes: Hummingbird's basic context plus the address
/// the request came from, which `StatusAccess` needs to tell this host from the rest.
struct NodeRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The client's address (nil for a Unix socket or an unknown peer).
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
