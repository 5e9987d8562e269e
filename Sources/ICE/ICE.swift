/// STUN codec, STUN/TURN server, TURN REST credentials, the libnice ICE agent and
/// NAT behaviour discovery.
public enum ICEModule {}
