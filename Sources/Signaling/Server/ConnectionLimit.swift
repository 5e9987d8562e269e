public import MeshCore

/// The node's connection budget as the signaling server sees it (setting `max-connections`): a
/// WebSocket connection takes a slot when its upgrade is accepted and gives it back when the TCP
/// connection closes, so a node near its open-file limit refuses new clients (HTTP 503) instead
/// of running out of descriptors. The same budget counts the TURN server's TCP and TLS
/// connections (``MeshCore/ConnectionBudget``; the node passes one budget to both).
public typealias ConnectionLimit = ConnectionBudget
