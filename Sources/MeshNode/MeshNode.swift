/// Composes ICE, Signaling and Media into a node (`serve`) and a peer (`join`).
public enum MeshNodeVersion {
    public static let string = "0.1.0"
}
