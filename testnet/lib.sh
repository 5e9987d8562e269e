# shellcheck shell=bash
# Shared helpers of the testnet scripts (source this file; it sets no shell options).
#
# The testnet is a small internet made of network namespaces, all named with the prefix
# "mn-" so that `down` can remove exactly its own. Nothing here touches the host's own
# interfaces, routes or firewall: every veth is created directly inside two of our
# namespaces, and no namespace has a link to the host, so no route leads out.
#
# Address plan (docs/testnet.md has the diagram):
#   wan segment       bridge br0 in mn-wan, two prefixes on one L2 segment:
#                     198.51.100.0/24 (nodes), 203.0.113.0/24 (routers' public sides)
#   mn-ref            198.51.100.2 + 198.51.100.3   coturn, the reference RFC 5780 server
#   mn-node1          198.51.100.10 + .11           meshnode node hosts
#   mn-node2          198.51.100.20 + .21
#   mn-r-NAME         203.0.113.(100+i) on wan0     NAT router i (1-based position in MN_NATS)
#                     10.0.i.1/24 on lan0           (type "none": 192.0.2.(8i+1)/29, public)
#   mn-p-NAME         10.0.i.2/24                   the peer host behind router i
#                     (type "none": 192.0.2.(8i+2))

# MN_PREFIX lets a second testnet run beside the usual one (testnet/mesh uses "mm-"): every
# namespace name, the state directory and the lock take it.
: "${MN_PREFIX:=mn-}"
MN_WAN_NS="${MN_PREFIX}wan"
MN_STATE_DIR="${MN_STATE_DIR:-/run/${MN_PREFIX}testnet}"
MN_TYPES="eim-eif eim-adf eim-apdf apdm-apdf udp-blocked none"
MN_NODES="ref node1 node2"
MN_NODE_PREFIX="198.51.100"
MN_ROUTER_PREFIX="203.0.113"
MN_PUBLIC_LAN_PREFIX="192.0.2"
# shellcheck disable=SC2034 # used by the scripts that source this file
MN_STUN_PORT=3478

# Defaults; `up` options and environment variables override them.
: "${MN_NATS:=$MN_TYPES}"          # router instances; a type name, optionally with -N (apdm-apdf-2)
: "${MN_DELAY:=5}"                  # ms added per direction on every wan link
: "${MN_JITTER:=0}"                 # ms of jitter on every wan link
: "${MN_LOSS:=0}"                   # % loss per direction on every wan link
: "${MN_LAN_DELAY:=1}"              # ms added per direction on every LAN link
: "${MN_LINKS:=}"                   # per-link overrides: "NAME=DELAY/JITTER/LOSS ..."
: "${MN_HAIRPIN:=0}"                # 1: routers hairpin LAN traffic sent to their public address
: "${MN_UDP_TIMEOUT:=180}"          # s; UDP conntrack and mapping timeout (RFC 4787 REQ-5: >= 120)
: "${MN_COTURN:=1}"                 # 1: start coturn (RFC 5780) on mn-ref

mn_log() { printf '[testnet] %s\n' "$*" >&2; }
mn_die() { printf '[testnet] error: %s\n' "$*" >&2; exit 1; }

# One up or down at a time (a bounded wait for another one to finish).
mn_lock() {
    [ "${MN_LOCK_HELD:-}" = "$MN_PREFIX" ] && return 0
    exec 9>"/run/${MN_PREFIX}testnet.lock"
    flock -w 300 9 || mn_die "another testnet/up or testnet/down is still running"
}

# For a script that uses the testnet for a while (selftest, matrix, faults): holds the same
# lock until it exits, so that another user's up or down (which would stop every process in
# our namespaces and rebuild them) waits instead of breaking a run; the script's own up and
# down see MN_LOCK_HELD and go ahead.
mn_hold_lock() {
    mn_lock
    export MN_LOCK_HELD=$MN_PREFIX
}

mn_require_root() {
    [ "$(id -u)" = 0 ] || mn_die "must run as root (network namespaces, nftables)"
}

# Installs what the testnet needs from Debian when it is missing (root only).
mn_ensure_tools() {
    local missing="" tool pkg
    for pair in ip:iproute2 nft:nftables tc:iproute2 turnserver:coturn turnutils_natdiscovery:coturn \
        jq:jq ethtool:ethtool cc:gcc; do
        tool=${pair%%:*}
        pkg=${pair##*:}
        command -v "$tool" >/dev/null 2>&1 || missing="$missing $pkg"
    done
    [ -z "$missing" ] && return 0
    command -v apt-get >/dev/null 2>&1 || mn_die "missing tools and no apt-get:$missing"
    mn_log "installing:$missing"
    # shellcheck disable=SC2086
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    # Debian's coturn package may start a system-wide server: we start our own in a namespace.
    systemctl disable --now coturn >/dev/null 2>&1 || true
}

# The NAT type of a router instance: the name without a trailing -N.
mn_type_of() {
    local name=$1 type
    type=$(printf '%s' "$name" | sed -E 's/-[0-9]+$//')
    case " $MN_TYPES " in
        *" $type "*) printf '%s\n' "$type" ;;
        *) return 1 ;;
    esac
}

# The 1-based index of a router instance in MN_NATS.
mn_index_of() {
    local name=$1 i=0 n
    for n in $MN_NATS; do
        i=$((i + 1))
        [ "$n" = "$name" ] && { echo "$i"; return 0; }
    done
    return 1
}

mn_router_wan_ip() { echo "$MN_ROUTER_PREFIX.$((100 + $1))"; }
mn_lan_router_ip() {
    if [ "$2" = none ]; then echo "$MN_PUBLIC_LAN_PREFIX.$((8 * $1 + 1))"; else echo "10.0.$1.1"; fi
}
mn_lan_peer_ip() {
    if [ "$2" = none ]; then echo "$MN_PUBLIC_LAN_PREFIX.$((8 * $1 + 2))"; else echo "10.0.$1.2"; fi
}
mn_lan_net() {
    if [ "$2" = none ]; then echo "$MN_PUBLIC_LAN_PREFIX.$((8 * $1))/29"; else echo "10.0.$1.0/24"; fi
}
mn_lan_len() { if [ "$2" = none ]; then echo 29; else echo 24; fi; }

# Addresses of a node host (first one primary).
mn_node_ips() {
    case $1 in
        ref) echo "$MN_NODE_PREFIX.2 $MN_NODE_PREFIX.3" ;;
        node1) echo "$MN_NODE_PREFIX.10 $MN_NODE_PREFIX.11" ;;
        node2) echo "$MN_NODE_PREFIX.20 $MN_NODE_PREFIX.21" ;;
        *) return 1 ;;
    esac
}

# The namespace of a host name as the scripts and users write it:
#   wan, ref, node1, node2          -> mn-wan, mn-ref, mn-node1, mn-node2
#   NAME (a router instance)        -> mn-p-NAME  (the peer host behind it)
#   r-NAME / router-NAME            -> mn-r-NAME  (the router itself)
#   mn-...                          -> itself
mn_ns_of() {
    local host=$1
    case $host in
        "$MN_PREFIX"*) echo "$host" ;;
        wan) echo "$MN_WAN_NS" ;;
        ref | node1 | node2) echo "$MN_PREFIX$host" ;;
        r-* ) echo "${MN_PREFIX}r-${host#r-}" ;;
        router-*) echo "${MN_PREFIX}r-${host#router-}" ;;
        p-*) echo "${MN_PREFIX}p-${host#p-}" ;;
        *) mn_type_of "$host" >/dev/null || mn_is_shape_peer "$host" || return 1; echo "${MN_PREFIX}p-$host" ;;
    esac
}

# Our namespaces that exist now.
mn_namespaces() {
    ip netns list 2>/dev/null | awk '{print $1}' | grep "^$MN_PREFIX" || true
}

mn_ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }

# Runs a command inside a namespace.
mn_in() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# Creates a namespace with loopback up, IPv6 off (keeps ICE gathering to the IPv4 plan) and
# default sysctls.
mn_ns_add() {
    local ns=$1
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    mn_in "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# Creates a veth pair directly between two namespaces (never in the host's namespace).
mn_veth() {
    local ns_a=$1 if_a=$2 ns_b=$3 if_b=$4
    ip -n "$ns_a" link add "$if_a" type veth peer name "$if_b" netns "$ns_b"
    ip -n "$ns_a" link set "$if_a" up
    ip -n "$ns_b" link set "$if_b" up
}

# Whether this kernel has sch_netem (some minimal kernels, such as the VMs this project runs
# on, are built without it). Probed once on the loopback of mn-wan.
mn_have_netem() {
    if [ -z "${MN_NETEM_OK:-}" ]; then
        if ip netns exec "$MN_WAN_NS" tc qdisc add dev lo root netem delay 1ms 2>/dev/null; then
            ip netns exec "$MN_WAN_NS" tc qdisc del dev lo root 2>/dev/null || true
            MN_NETEM_OK=1
        else
            MN_NETEM_OK=0
        fi
    fi
    [ "$MN_NETEM_OK" = 1 ]
}

# Sets (or replaces) netem on one interface's egress: DELAY_MS JITTER_MS LOSS_PCT.
# Without sch_netem, loss is emulated by nftables in mn-wan (see mn_wan_loss) and delay or
# jitter cannot be had: asking for them is an error.
mn_netem() {
    local ns=$1 dev=$2 delay=$3 jitter=$4 loss=$5 args
    if ! mn_have_netem; then
        if [ "$delay" != 0 ] || [ "$jitter" != 0 ]; then
            mn_die "this kernel has no sch_netem: delay/jitter on $ns/$dev cannot be emulated (use --delay 0 --jitter 0 --lan-delay 0; loss still works)"
        fi
        return 0
    fi
    args="delay ${delay}ms"
    [ "$jitter" != 0 ] && args="$args ${jitter}ms distribution normal"
    [ "$loss" != 0 ] && args="$args loss ${loss}%"
    # A deep queue: a video call at netem's delay must not overflow it.
    # shellcheck disable=SC2086
    ip netns exec "$ns" tc qdisc replace dev "$dev" root netem limit 10000 $args
}

# The netem triple "DELAY JITTER LOSS" of a link, from MN_LINKS or the wan defaults.
mn_link_params() {
    local name=$1 entry spec d j l
    for entry in $MN_LINKS; do
        if [ "${entry%%=*}" = "$name" ]; then
            spec=${entry#*=}
            IFS=/ read -r d j l <<<"$spec"
            echo "${d:-$MN_DELAY} ${j:-$MN_JITTER} ${l:-$MN_LOSS}"
            return 0
        fi
    done
    echo "$MN_DELAY $MN_JITTER $MN_LOSS"
}

# The wan link of a host: its interface wan0 and the bridge port PORT in mn-wan. Netem on
# both ends, so each direction gets the delay, jitter and loss.
mn_wan_link_netem() {
    local name=$1 ns=$2 port=$3 d j l
    read -r d j l <<<"$(mn_link_params "$name")"
    mn_netem "$ns" wan0 "$d" "$j" "$l"
    mn_netem "$MN_WAN_NS" "$port" "$d" "$j" "$l"
    if ! mn_have_netem && [ "$l" != 0 ]; then mn_wan_loss "$port" "$l"; fi
}

# Whether any wan link is to get delay or jitter.
mn_wan_wants_delay() {
    local name d j l
    for name in $MN_NODES $MN_NATS; do
        read -r d j l <<<"$(mn_link_params "$name")"
        [ "$d" != 0 ] || [ "$j" != 0 ] && return 0
    done
    return 1
}

# Loss without netem: the bridge in mn-wan drops a random share of the frames entering and
# leaving one port (nftables numgen), so each direction of that link loses LOSS_PCT.
mn_wan_loss() {
    local port=$1 loss=$2 per10k
    per10k=$(awk -v l="$loss" 'BEGIN { printf "%d", l * 100 + 0.5 }')
    [ "$per10k" -gt 0 ] || return 0
    ip netns exec "$MN_WAN_NS" nft -f - <<EOF
table bridge mnloss_$port {
    chain forward {
        type filter hook forward priority filter; policy accept;
        iifname "$port" numgen random mod 10000 < $per10k drop
        oifname "$port" numgen random mod 10000 < $per10k drop
    }
}
EOF
}

# Routes every wan host needs: both wan prefixes on-link, and each public LAN behind a
# "none" router through that router. No default route: nothing outside the plan is routable.
mn_wan_routes() {
    local ns=$1 own_prefix=$2 name i type
    if [ "$own_prefix" = "$MN_NODE_PREFIX" ]; then
        ip -n "$ns" route add "$MN_ROUTER_PREFIX.0/24" dev wan0 scope link
    else
        ip -n "$ns" route add "$MN_NODE_PREFIX.0/24" dev wan0 scope link
    fi
    i=0
    for name in $MN_NATS; do
        i=$((i + 1))
        type=$(mn_type_of "$name")
        [ "$type" = none ] || continue
        [ "$ns" = "${MN_PREFIX}r-$name" ] && continue
        ip -n "$ns" route add "$(mn_lan_net "$i" none)" via "$(mn_router_wan_ip "$i")" dev wan0
    done
}

# The nftables ruleset of a router: TYPE PUBLIC_IP LAN_NET HAIRPIN(0|1) TIMEOUT_S.
#
#  mapping  - eim: `snat to PUBLIC` (Linux keeps the source port: one host per LAN);
#             apdm: `snat to PUBLIC random` (a new port per destination address and port).
#  filtering- apdf: only conntrack replies come in (what plain SNAT gives);
#             eif: every inbound UDP packet to a live mapping is DNATed to its owner, through the
#             map @mapping (public port -> internal address . port), recorded after SNAT;
#             adf: the same, but only from addresses in @contacted (public port . remote address).
#  udp-blocked - TCP and ICMP only, UDP dropped both ways.
#  none     - plain routing of a public LAN, nothing filtered.
mn_router_ruleset() {
    local type=$1 pub=$2 lan=$3 hairpin=$4 timeout=$5
    cat <<EOF
table ip mn
delete table ip mn
table ip mn {
EOF
    if [ "$type" = none ]; then
        cat <<EOF
    chain forward {
        type filter hook forward priority filter; policy accept;
    }
}
EOF
        return 0
    fi
    cat <<EOF
    # public port -> internal address . port of every live UDP mapping
    map mapping {
        type inet_service : ipv4_addr . inet_service
        flags dynamic, timeout
        timeout ${timeout}s
        size 65535
    }
    # (public port . remote address) pairs the inside has sent to
    set contacted {
        type inet_service . ipv4_addr
        flags dynamic, timeout
        timeout ${timeout}s
        size 65535
    }
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
EOF
    case $type in
        eim-eif) echo "        iifname \"wan0\" ip daddr $pub udp dport @mapping dnat ip to udp dport map @mapping" ;;
        eim-adf) echo "        iifname \"wan0\" ip daddr $pub udp dport . ip saddr @contacted dnat ip to udp dport map @mapping" ;;
    esac
    if [ "$hairpin" = 1 ] && [ "$type" != udp-blocked ]; then
        echo "        iifname \"lan0\" ip daddr $pub udp dport @mapping dnat ip to udp dport map @mapping"
    fi
    cat <<EOF
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
EOF
    if [ "$hairpin" = 1 ] && [ "$type" != udp-blocked ]; then
        echo "        iifname \"lan0\" oifname \"lan0\" ct status dnat snat ip to $pub"
    fi
    case $type in
        apdm-apdf) echo "        oifname \"wan0\" ip saddr $lan snat ip to $pub random" ;;
        *) echo "        oifname \"wan0\" ip saddr $lan snat ip to $pub" ;;
    esac
    cat <<EOF
    }
    # Runs after SNAT: the packet already carries its public source port.
    chain record {
        type filter hook postrouting priority srcnat + 1; policy accept;
        oifname "wan0" ip saddr $pub meta l4proto udp ct direction original update @mapping { udp sport : ct original ip saddr . ct original proto-src }
        oifname "wan0" ip saddr $pub meta l4proto udp ct direction reply update @mapping { udp sport : ct reply ip saddr . ct reply proto-src }
        oifname "wan0" ip saddr $pub meta l4proto udp update @contacted { udp sport . ip daddr }
    }
    chain forward {
        type filter hook forward priority filter; policy drop;
EOF
    [ "$type" = udp-blocked ] && echo "        meta l4proto udp drop"
    cat <<EOF
        ct state established,related accept
        iifname "lan0" oifname "wan0" accept
        iifname "wan0" oifname "lan0" ct status dnat accept
EOF
    [ "$hairpin" = 1 ] && echo "        iifname \"lan0\" oifname \"lan0\" accept"
    cat <<EOF
    }
    chain input {
        type filter hook input priority filter; policy accept;
        iifname "wan0" ct state established,related accept
        iifname "wan0" icmp type echo-request accept
        iifname "wan0" drop
    }
}
EOF
}

# Stops every process inside our namespaces (they were all started by the testnet scripts
# or by a user through testnet/exec), then deletes the namespaces. Bounded: a few rounds.
mn_teardown() {
    local ns pids round
    for round in 1 2 3; do
        pids=""
        for ns in $(mn_namespaces); do
            pids="$pids $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
        done
        pids=$(echo "$pids" | xargs -n1 2>/dev/null | sort -u | xargs 2>/dev/null || true)
        [ -z "$pids" ] && break
        local sig=TERM
        [ "$round" = 3 ] && sig=KILL
        for pid in $pids; do kill -s "$sig" "$pid" 2>/dev/null || true; done

        for _ in 1 2 3 4 5 6 7 8 9 10; do
            local alive=""
            for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
            [ -z "$alive" ] && break
            sleep 0.2
        done
    done
    for ns in $(mn_namespaces); do
        ip netns delete "$ns" 2>/dev/null || true
    done
    rm -rf "$MN_STATE_DIR"
    # The IPv6-only peer's hosts file (testnet/shapes.sh v6).
    rm -rf "/etc/netns/${MN_PREFIX}p-v6only-a"
}

# Loads the settings `up` recorded, so later scripts see the same MN_NATS and friends.
mn_load_state() {
    [ -f "$MN_STATE_DIR/state.env" ] || mn_die "the testnet is not up (run testnet/up)"
    # shellcheck disable=SC1091
    . "$MN_STATE_DIR/state.env"
}

# The meshnode binary: MESHNODE_BIN, or the debug build of this checkout.
mn_meshnode_bin() {
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if [ -n "${MESHNODE_BIN:-}" ]; then echo "$MESHNODE_BIN"; return 0; fi
    for candidate in "$root/.build/debug/meshnode" "$root/.build/release/meshnode"; do
        [ -x "$candidate" ] && { echo "$candidate"; return 0; }
    done
    return 1
}

# The harder shapes (carrier-grade NAT, peers behind one NAT): their plan and builder.
# shellcheck source=testnet/shapes.sh
. "$(dirname "${BASH_SOURCE[0]}")/shapes.sh"
