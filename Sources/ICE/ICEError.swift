public import MeshCore

/// The ICE layer's errors.
public enum ICELayer: ErrorLayer { public static let name = "ICEError" }

/// An error from the ICE agent, from parsing a candidate or from NAT behaviour discovery.
public typealias ICEError = LayerError<ICELayer>

extension LayerError.Code where Layer == ICELayer {
    /// An `a=candidate:` line that does not follow RFC 8839 §5.1, or a candidate libnice
    /// cannot use (for example an mDNS `.local` address).
    public static let invalidCandidate = Self("invalidCandidate")
    /// A configuration value the agent cannot use (for example a server given by name instead
    /// of IP address).
    public static let invalidConfiguration = Self("invalidConfiguration")
    /// ICE credentials outside RFC 8445 §5.3 (ufrag 4–256, pwd 22–256 characters).
    public static let invalidCredentials = Self("invalidCredentials")
    /// The agent was closed.
    public static let closed = Self("closed")
    /// Data was sent before a candidate pair was selected.
    public static let notConnected = Self("notConnected")
    /// libnice refused the operation.
    public static let operationFailed = Self("operationFailed")
    /// A `HOST[:PORT]` server argument that cannot be used (NAT check).
    public static let invalidServer = Self("invalidServer")
    /// A NAT behaviour test could not run: no socket, no answer from the server.
    public static let discoveryFailed = Self("discoveryFailed")
    /// A datagram from the kernel's rtnetlink socket that does not frame (a length past its
    /// end, a header too short, an address whose length does not fit its family).
    public static let malformedNetlink = Self("malformedNetlink")
    /// The rtnetlink socket that watches the host's addresses could not be opened.
    public static let networkMonitorUnavailable = Self("networkMonitorUnavailable")
}
