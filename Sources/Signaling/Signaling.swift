/// The signaling rendezvous: wire protocol types, server, client with reconnect and identity.
/// Filled in by the signaling issue; the foundation only gives the module its place.
public enum SignalingProtocol {
    /// The WebSocket subprotocol name of protocol v1 (DESIGN.md, "Signaling protocol").
    public static let subprotocol = "meshnode.v1"
}
