/// Constants of signaling protocol v1 (DESIGN.md, "Signaling protocol"; docs/protocol.md).
public enum SignalingProtocol {
    /// The WebSocket subprotocol name of protocol v1.
    public static let subprotocol = "meshnode.v1"
    /// The path of the WebSocket endpoint on the node's HTTP port.
    public static let path = "/ws"
    /// The largest text frame a node or client accepts (docs/protocol.md, "Limits").
    public static let maxFrameBytes = 64 * 1024
    /// The `from` of messages the node itself originates; no peer name contains `@`.
    public static let nodeAddress = "@node"
    /// The default heartbeat interval (docs/protocol.md, "Liveness").
    public static let defaultHeartbeat: Duration = .seconds(15)
}
