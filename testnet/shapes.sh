# shellcheck shell=bash
# The testnet's harder shapes (issue 18, item 4), built by `testnet/up --shapes "cgn same roam v6"`
# beside the one-level routers, checked by `testnet/verify` and called by `testnet/matrix`.
# Source after lib.sh. docs/testnet.md ("Shapes") has the diagram.
#
#   cgn   carrier-grade NAT (RFC 6598 shared space 100.64.0.0/10) with home NATs behind it:
#         mn-r-cgn1 (carrier, eim-adf, hairpins as RFC 4787 REQ-9 / RFC 6888 REQ-1 ask)
#           ├─ mn-r-cgn1-a (home, eim-apdf) ── mn-p-cgn1-a
#           ├─ mn-r-cgn1-b (home, eim-apdf) ── mn-p-cgn1-b
#           └─ mn-p-cgn1-m (a phone on mobile data: straight on the carrier, 100.64.1.99)
#         mn-r-cgn2 (another carrier, eim-apdf, does NOT hairpin)
#           ├─ mn-r-cgn2-a (home, eim-apdf) ── mn-p-cgn2-a
#           ├─ mn-r-cgn2-b (home, eim-apdf) ── mn-p-cgn2-b
#           └─ mn-p-cgn2-m (100.64.2.99)
#         Subscribers of a carrier do not see each other (isolated bridge ports, as separate
#         access lines): only the carrier's hairpinning can join them.
#   same  two peers behind one NAT (eim-apdf), RFC 4787 §6:
#         mn-r-same    shared LAN, no hairpinning: host candidates reach each other
#         mn-r-samehp  isolated clients (as a guest Wi-Fi), hairpinning: only via the public address
#         mn-r-sameiso isolated clients, no hairpinning: nothing direct is possible
#         each with peers mn-p-NAME-a and mn-p-NAME-b.
#   roam  a phone that moves from Wi-Fi to mobile data mid-call (testnet/faults roam):
#         mn-p-roam-a has eth0 on a home NAT mn-r-roam-wifi (eim-apdf, 10.0.26.2) and rmnet0
#         to a carrier NAT mn-r-roam-cell (eim-apdf, 100.64.3.2), down and without an address
#         until mn_shape_roam moves it.
#   v6    IPv6 (2001:db8::/32, RFC 3849) beside the IPv4 plan; node1 gets 2001:db8::10 too:
#         mn-r-v6ds, mn-r-v6ds2  dual-stack homes: IPv4 eim-apdf NAT, IPv6 routed /64 behind a
#                                stateful firewall (RFC 6092: only what the inside opened
#                                comes in) ── peers v6ds-a, v6ds-b
#         mn-r-v6only            an IPv6-only network, the same firewall ── peer v6only-a
#
# A carrier's or a same-NAT router's LAN side is a bridge named lan0, so that the one-level
# ruleset (mn_router_ruleset) and the flow counters (calls.sh) apply to it unchanged.

MN_SHAPES_ALL="cgn same roam v6"
MN_V6_WAN="2001:db8::"           # the wan segment's IPv6 /64 (node1 ::10, routers ::OCTET)
MN_V6_NODE1="2001:db8::10"
# The name the IPv6-only peer uses for node1 (its namespace's hosts file): `meshnode` does not
# take an IPv6 literal in --node (ws://[2001:db8::10]:8080/ws is cut at the first colon).
MN_V6_NODE1_NAME="node1.v6.mn.test"
: "${MN_SHAPES:=}"

# Shape routers on the wan: 203.0.113.201 and up (the one-level routers use .101-.130).
# "name wan-octet type hairpin lan-net router-lan-ip isolated"
mn_shape_table() {
    case $1 in
        cgn) cat <<EOF
cgn1 201 eim-adf 1 100.64.1.0/24 100.64.1.1 1
cgn2 202 eim-apdf 0 100.64.2.0/24 100.64.2.1 1
EOF
            ;;
        same) cat <<EOF
same 203 eim-apdf 0 10.0.23.0/24 10.0.23.1 0
samehp 204 eim-apdf 1 10.0.24.0/24 10.0.24.1 1
sameiso 205 eim-apdf 0 10.0.25.0/24 10.0.25.1 1
EOF
            ;;
        roam) cat <<EOF
roam-wifi 206 eim-apdf 0 10.0.26.0/24 10.0.26.1 0
roam-cell 207 eim-apdf 0 100.64.3.0/24 100.64.3.1 0
EOF
            ;;
        v6) cat <<EOF
v6ds 208 eim-apdf 0 10.0.28.0/24 10.0.28.1 0
v6ds2 209 eim-apdf 0 10.0.29.0/24 10.0.29.1 0
v6only 210 v6only 0 - - 0
EOF
            ;;
        *) return 1 ;;
    esac
}

# The peers of the shapes that are up: "peer router-ns-suffix peer-ip"; homes of a carrier
# have a router of their own (r-cgn1-a), peers behind one NAT share it (r-same).
mn_shape_peers() {
    local shape
    for shape in ${1:-$MN_SHAPES}; do
        case $shape in
            cgn) cat <<EOF
cgn1-a cgn1-a 10.64.11.2
cgn1-b cgn1-b 10.64.12.2
cgn1-m cgn1 100.64.1.99
cgn2-a cgn2-a 10.64.21.2
cgn2-b cgn2-b 10.64.22.2
cgn2-m cgn2 100.64.2.99
EOF
                ;;
            same) cat <<EOF
same-a same 10.0.23.2
same-b same 10.0.23.3
samehp-a samehp 10.0.24.2
samehp-b samehp 10.0.24.3
sameiso-a sameiso 10.0.25.2
sameiso-b sameiso 10.0.25.3
EOF
                ;;
            roam) echo "roam-a roam-wifi+roam-cell 10.0.26.2" ;;
            v6) cat <<EOF
v6ds-a v6ds 10.0.28.2
v6ds-b v6ds2 10.0.29.2
v6only-a v6only -
EOF
                ;;
        esac
    done
}

# Whether NAME is a shape peer (of any shape, up or not).
mn_is_shape_peer() {
    mn_shape_peers "$MN_SHAPES_ALL" | awk -v n="$1" '$1 == n { found = 1 } END { exit !found }'
}

# The shape a peer belongs to (cgn, same, roam, v6).
mn_shape_of_peer() {
    case $1 in cgn*) echo cgn ;; same*) echo same ;; roam*) echo roam ;; v6*) echo v6 ;; *) return 1 ;; esac
}

# The router (without prefix, as in mn-r-NAME) whose LAN the peer sits on, and its IP.
mn_shape_router_of() { mn_shape_peers "$MN_SHAPES_ALL" | awk -v n="$1" '$1 == n { print $2 }'; }
mn_shape_peer_ip() { mn_shape_peers "$MN_SHAPES_ALL" | awk -v n="$1" '$1 == n { print $3 }'; }

# The behaviour verify must measure from behind a shape peer (both NATs together for a home
# behind a carrier: the home's port-dependent filtering is the stricter one, both map
# independently of the endpoint, so eim-apdf).
mn_shape_peer_label() {
    case $1 in
        cgn1-m) echo eim-adf ;;    # the carrier alone
        *) echo eim-apdf ;;
    esac
}

# Whether the NAT in front of a shape peer hairpins (verify checks it with natdiscovery -H):
# the carrier cgn1 and the router samehp do.
mn_shape_peer_hairpins() {
    case $1 in cgn1-* | samehp-*) return 0 ;; *) return 1 ;; esac
}

# The path RFC 4787 and hairpinning allow between two shape peers (or a shape peer and a
# one-level type), with the reason, "PATH reason words".
mn_shape_expected() {
    local a=$1 b=$2 ra rb
    ra=$(mn_shape_router_of "$a"); rb=$(mn_shape_router_of "$b")
    case "$a:$b" in
        cgn1-?:cgn1-?) echo "direct carrier-hairpin"; return ;;
        cgn2-?:cgn2-?) echo "relay carrier-no-hairpin"; return ;;
        same-?:same-?) echo "direct shared-lan-host"; return ;;
        samehp-?:samehp-?) echo "direct nat-hairpin"; return ;;
        v6ds-?:v6ds-?) echo "direct dual-stack"; return ;;
        v6only-a:v6ds-? | v6ds-?:v6only-a) echo "direct ipv6"; return ;;
        v6only-a:* | *:v6only-a) echo "relay rfc6156-family-bridge"; return ;;
        sameiso-?:sameiso-?) echo "relay isolated-no-hairpin"; return ;;
    esac
    # Different NATs: a shape peer behaves as its label (verified), so RFC 4787 as for one level.
    [ -n "$ra" ] && a=$(mn_shape_peer_label "$a")
    [ -n "$rb" ] && b=$(mn_shape_peer_label "$b")
    if [ "$a" = udp-blocked ] || [ "$b" = udp-blocked ]; then echo "relay-tcp rfc4787"; return; fi
    case "$a:$b" in
        apdm-apdf:apdm-apdf | apdm-apdf:eim-apdf | eim-apdf:apdm-apdf) echo "relay rfc4787" ;;
        *) echo "direct rfc4787" ;;
    esac
}

# Client isolation on a same-NAT router: LAN-to-LAN traffic is forwarded only when it was
# hairpinned (DNATed from the public address), never straight between the clients; the
# clients have /32 addresses (nothing on-link) and the bridge ports are isolated.
mn_shape_isolation_ruleset() {
    cat <<EOF
table ip mniso
delete table ip mniso
table ip mniso {
    counter lan_to_lan_dropped { }
    chain forward {
        type filter hook forward priority filter - 5; policy accept;
        iifname "lan0" oifname "lan0" ct status & dnat == 0 counter name "lan_to_lan_dropped" drop
    }
}
EOF
}

# A namespace with a veth into a bridge port of BRIDGE_NS's lan0.
mn_shape_bridge_port() {
    local bridge_ns=$1 port=$2 ns=$3 dev=$4 isolated=$5
    mn_veth "$bridge_ns" "$port" "$ns" "$dev"
    ip -n "$bridge_ns" link set "$port" master lan0
    [ "$isolated" = 1 ] && ip -n "$bridge_ns" link set dev "$port" type bridge_slave isolated on
    return 0
}

# A NAT router's nftables and conntrack timeouts (as `up` does for one-level routers).
mn_shape_nat() {
    local ns=$1 name=$2 type=$3 pub=$4 lan=$5 hairpin=$6
    mn_router_ruleset "$type" "$pub" "$lan" "$hairpin" "$MN_UDP_TIMEOUT" >"$MN_STATE_DIR/$name.nft"
    mn_in "$ns" nft -f "$MN_STATE_DIR/$name.nft"
    mn_in "$ns" sysctl -qw \
        net.netfilter.nf_conntrack_udp_timeout="$MN_UDP_TIMEOUT" \
        net.netfilter.nf_conntrack_udp_timeout_stream="$MN_UDP_TIMEOUT"
}

# Builds the shapes in MN_SHAPES. Called by `up` after the one-level routers, with its
# attach_wan (which links a namespace's wan0 to the wan switch).
mn_build_shapes() {
    local shape name octet type hairpin lan rip isolated r pub peer rname pip home hr hip i
    for shape in $MN_SHAPES; do
        while read -r name octet type hairpin lan rip isolated; do
            [ "$type" = v6only ] && continue   # no IPv4 at all: mn_build_v6
            r="${MN_PREFIX}r-$name"
            pub="$MN_ROUTER_PREFIX.$octet"
            mn_ns_add "$r"
            attach_wan "$name" "$r"
            ip -n "$r" addr add "$pub/24" dev wan0
            mn_wan_routes "$r" "$MN_ROUTER_PREFIX"
            mn_in "$r" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
            ip -n "$r" link add lan0 type bridge
            ip -n "$r" link set lan0 up
            mn_in "$r" sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
            ip -n "$r" addr add "$rip/${lan#*/}" dev lan0
            mn_shape_nat "$r" "$name" "$type" "$pub" "$lan" "$hairpin"
            if [ "$isolated" = 1 ]; then mn_shape_isolation_ruleset | mn_in "$r" nft -f -; fi
            i=0
            [ "$shape" = roam ] && continue
            [ "$shape" = v6 ] && continue
            while read -r peer rname pip; do
                case $peer in "$name"-?) ;; *) continue ;; esac
                i=$((i + 1))
                if [ "$shape" = cgn ] && [ "$rname" != "$name" ]; then
                    # A home router on the carrier's LAN (100.64.N.(10+i)), its own LAN behind.
                    home="${MN_PREFIX}r-$peer"
                    hip="${rip%.*}.$((10 + i))"
                    hr="${pip%.*}.1"
                    mn_ns_add "$home"
                    mn_shape_bridge_port "$r" "c$i" "$home" wan0 "$isolated"
                    ip -n "$home" addr add "$hip/${lan#*/}" dev wan0
                    ip -n "$home" route add default via "$rip" dev wan0
                    mn_in "$home" sysctl -qw net.ipv4.ip_forward=1
                    mn_ns_add "${MN_PREFIX}p-$peer"
                    mn_veth "$home" lan0 "${MN_PREFIX}p-$peer" eth0
                    ip -n "$home" addr add "$hr/24" dev lan0
                    ip -n "${MN_PREFIX}p-$peer" addr add "$pip/24" dev eth0
                    ip -n "${MN_PREFIX}p-$peer" route add default via "$hr" dev eth0
                    mn_shape_nat "$home" "$peer" eim-apdf "$hip" "${pip%.*}.0/24" 0
                else
                    # A client on the router's LAN bridge (or a phone on the carrier's);
                    # isolated: a /32, nothing on-link.
                    mn_ns_add "${MN_PREFIX}p-$peer"
                    mn_shape_bridge_port "$r" "c$i" "${MN_PREFIX}p-$peer" eth0 "$isolated"
                    if [ "$isolated" = 1 ]; then
                        ip -n "${MN_PREFIX}p-$peer" addr add "$pip/32" dev eth0
                        ip -n "${MN_PREFIX}p-$peer" route add "$rip" dev eth0 scope link
                    else
                        ip -n "${MN_PREFIX}p-$peer" addr add "$pip/${lan#*/}" dev eth0
                    fi
                    ip -n "${MN_PREFIX}p-$peer" route add default via "$rip" dev eth0 onlink
                fi
            done < <(mn_shape_peers "$shape")
        done < <(mn_shape_table "$shape")
        [ "$shape" = v6 ] && mn_build_v6
        if [ "$shape" = roam ]; then
            # The phone: Wi-Fi up with its address and default route, mobile data down.
            local p="${MN_PREFIX}p-roam-a"
            mn_ns_add "$p"
            mn_shape_bridge_port "${MN_PREFIX}r-roam-wifi" c1 "$p" eth0 0
            mn_shape_bridge_port "${MN_PREFIX}r-roam-cell" c1 "$p" rmnet0 0
            ip -n "$p" link set rmnet0 down
            ip -n "$p" addr add 10.0.26.2/24 dev eth0
            ip -n "$p" route add default via 10.0.26.1 dev eth0
        fi
    done
}

# mn_shape_roam: the phone leaves the Wi-Fi (its address goes, the link goes down) and comes
# up on mobile data with another address behind another NAT, as a phone does when it walks
# out of the house. Nothing else is told.
mn_shape_roam() {
    local p="${MN_PREFIX}p-roam-a"
    ip -n "$p" addr flush dev eth0
    ip -n "$p" link set eth0 down
    ip -n "$p" link set rmnet0 up
    ip -n "$p" addr add 100.64.3.2/24 dev rmnet0
    ip -n "$p" route replace default via 100.64.3.1 dev rmnet0
}

# mn_shape_roam_home: the phone back on the Wi-Fi (as built by up), for a scenario that needs it
# there after another one moved it.
mn_shape_roam_home() {
    local p="${MN_PREFIX}p-roam-a"
    ip -n "$p" addr flush dev rmnet0
    ip -n "$p" link set rmnet0 down
    ip -n "$p" link set eth0 up
    ip -n "$p" addr replace 10.0.26.2/24 dev eth0
    ip -n "$p" route replace default via 10.0.26.1 dev eth0
}

# Turns IPv6 on in a namespace (mn_ns_add turns it off), for interfaces made before and after.
mn_v6_on() {
    local ns=$1 dev
    mn_in "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
    for dev in $(ip -n "$ns" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do
        mn_in "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=0" 2>/dev/null || true
    done
}

# An IPv6 firewall as home routers have (RFC 6092 REC-11): what the inside opened comes back,
# nothing else; ICMPv6 passes (neighbour discovery, path MTU).
mn_v6_firewall() {
    mn_in "$1" nft -f - <<EOF
table ip6 mn6
delete table ip6 mn6
table ip6 mn6 {
    chain forward {
        type filter hook forward priority filter; policy drop;
        meta l4proto ipv6-icmp accept
        ct state established,related accept
        iifname "lan0" oifname "wan0" accept
    }
}
EOF
}

# The v6 shape: node1 gets an IPv6 address; dual-stack homes (the IPv4 side built above as
# eim-apdf routers with their peers) get an IPv6 /64 each; an IPv6-only network.
mn_build_v6() {
    local name octet r p lan6 other
    mn_v6_on "${MN_PREFIX}node1"
    ip -n "${MN_PREFIX}node1" -6 addr add "$MN_V6_NODE1/64" dev wan0 nodad
    for name in v6ds v6ds2 v6only; do
        octet=$(mn_shape_table v6 | awk -v n="$name" '$1 == n { print $2 }')
        r="${MN_PREFIX}r-$name"
        lan6="2001:db8:$octet::"
        if [ "$name" = v6only ]; then
            mn_ns_add "$r"
            attach_wan "$name" "$r"
            ip -n "$r" link add lan0 type bridge
            ip -n "$r" link set lan0 up
        fi
        mn_v6_on "$r"
        mn_in "$r" sysctl -qw net.ipv6.conf.all.forwarding=1
        ip -n "$r" -6 addr add "$MN_V6_WAN$octet/64" dev wan0 nodad
        ip -n "$r" -6 addr add "${lan6}1/64" dev lan0 nodad
        mn_v6_firewall "$r"
        # The peer: dual-stack (an IPv4 address behind the NAT too) or IPv6 only.
        p="${MN_PREFIX}p-$(mn_shape_peers v6 | awk -v r="$name" '$2 == r { print $1 }')"
        mn_ns_add "$p"
        mn_v6_on "$p"
        mn_shape_bridge_port "$r" c1 "$p" eth0 0
        if [ "$name" = v6only ]; then
            mkdir -p "/etc/netns/$p"
            printf '::1 localhost\n%s %s\n' "$MN_V6_NODE1" "$MN_V6_NODE1_NAME" >"/etc/netns/$p/hosts"
        else
            ip -n "$p" addr add "$(mn_shape_peers v6 | awk -v r="$name" '$2 == r { print $3 }')/24" dev eth0
            ip -n "$p" route add default via "$(mn_shape_table v6 | awk -v n="$name" '$1 == n { print $6 }')" dev eth0
        fi
        ip -n "$p" -6 addr add "${lan6}2/64" dev eth0 nodad
        ip -n "$p" -6 route add default via "${lan6}1" dev eth0
        # Routes on the wan: node1 and every other v6 router reach this LAN through it.
        ip -n "${MN_PREFIX}node1" -6 route add "$lan6/64" via "$MN_V6_WAN$octet" dev wan0
    done
    # Each v6 router routes the other v6 LANs over the wan (made once all exist).
    for name in v6ds v6ds2 v6only; do
        for other in v6ds v6ds2 v6only; do
            [ "$other" = "$name" ] && continue
            octet=$(mn_shape_table v6 | awk -v n="$other" '$1 == n { print $2 }')
            ip -n "${MN_PREFIX}r-$name" -6 route add "2001:db8:$octet::/64" via "$MN_V6_WAN$octet" dev wan0
        done
    done
}
