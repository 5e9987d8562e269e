# shellcheck shell=bash
# Helpers of the scripts that place calls in the testnet (testnet/matrix, testnet/faults):
# a node, peers (identities, `meshnode join --accept auto`, `meshnode call --json`), the
# call summary, and a media-flow monitor on the routers. Source after lib.sh.
#
# The call summary is the one object `meshnode call --json` prints (docs/calls.md): `ok`,
# `error`, `setupMs`, `iceMs`, `dtlsMs`, `path` {local, remote (candidate types), transport,
# relay, localAddress, remoteAddress}, `streams` [{kind, sentFrames, receivedFrames, lost,
# recovered, …}], `rttMs`, `iceRestarts`. `join --json` prints the callee's own report as the
# event `call-ended`.

MN_NODE_HTTP_PORT=8080
MN_TURN_PORT=3478
MN_TURNS_PORT=5349

# Seconds since the epoch with milliseconds.
mn_now() { date +%s.%3N; }

# Prefixes each line of stdin with the time it was read (s.ms), unbuffered.
mn_stamp() { perl -MTime::HiRes=time -ne '$| = 1; printf "%.3f %s", time, $_'; }

# a - b in seconds, with milliseconds.
mn_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

# The wan host a relay address belongs to (node1, node2, ref), or the address itself.
mn_host_of_ip() {
    local ip=${1%:*} node
    for node in $MN_NODES; do
        case " $(mn_node_ips "$node") " in *" $ip "*) echo "$node"; return 0 ;; esac
    done
    echo "$ip"
}

# --- the node --------------------------------------------------------------------------------
# mn_node_start HOST: `meshnode serve` on the primary address of HOST (node1, node2) with a
# fixed TURN REST secret and data directory under $MN_CALL_DIR/HOST, so that a restart keeps
# names, keys and credentials. Its stderr and stdout, each line timestamped, go to
# $MN_CALL_DIR/HOST.log. Sets MN_NODE_PID_<host>. Fails when it is not running within 10 s.
mn_node_start() {
    local host=$1 ip dir log pid
    read -r ip _ <<<"$(mn_node_ips "$host")"
    dir="$MN_CALL_DIR/$host"
    log="$MN_CALL_DIR/$host.log"
    mkdir -p "$dir"
    [ -f "$dir/turn-secret" ] || head -c 24 /dev/urandom | base64 >"$dir/turn-secret"
    local before=0
    [ -f "$log" ] && before=$(grep -c "meshnode is running" "$log" || true)
    before=${before:-0}
    # The v6 shape (testnet/shapes.sh) gives node1 an IPv6 address: the node listens there too.
    local v6=()
    case $(ip -n "$MN_PREFIX$host" -6 addr show dev wan0 2>/dev/null) in *"inet6 $MN_V6_NODE1/"*)
        # (the IPv6-only peer dials it by name: logins are signed for the host:port dialled)
        v6=(--bind "$MN_V6_NODE1" --public-address "$MN_V6_NODE1_NAME:$MN_NODE_HTTP_PORT") ;;
    esac
    ip netns exec "$MN_PREFIX$host" "$MESHNODE" serve --bind "$ip" "${v6[@]}" --http-port "$MN_NODE_HTTP_PORT" \
        --turn-secret "$(cat "$dir/turn-secret")" --data-dir "$dir/data" --node-key "$dir/node-key" \
        ${MN_NODE_ARGS:-} </dev/null > >(mn_stamp >>"$log") 2>&1 9>&- &
    pid=$!
    printf -v "MN_NODE_PID_$host" '%s' "$pid"
    for _ in $(seq 1 100); do
        local now
        now=$(grep -c "meshnode is running" "$log" 2>/dev/null || true)
        [ "${now:-0}" -gt "$before" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    mn_log "the node on $host did not start: $(tail -5 "$log")"
    return 1
}

# mn_node_kill HOST [SIGNAL]: stops the node started by mn_node_start (default SIGKILL).
mn_node_kill() {
    local host=$1 sig=${2:-KILL} var="MN_NODE_PID_$1"
    local pid=${!var:-}
    [ -n "$pid" ] || return 0
    kill -s "$sig" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    printf -v "MN_NODE_PID_$host" '%s' ""
}

# mn_node_alive HOST: whether the node started by mn_node_start still runs; when it has
# exited, logs its exit status and returns 1.
mn_node_alive() {
    local var="MN_NODE_PID_$1" status=0
    local pid=${!var:-}
    [ -n "$pid" ] || return 1
    kill -0 "$pid" 2>/dev/null && return 0
    wait "$pid" 2>/dev/null || status=$?
    printf -v "MN_NODE_PID_$1" '%s' ""
    mn_log "the node on $1 exited with status $status: $(grep -v 'allocation\|login' "$MN_CALL_DIR/$1.log" | tail -3)"
    MN_NODE_EXITS="${MN_NODE_EXITS:-}$1 exited with status $status at $(date -u +%T); "
    return 1
}

# The signaling URL of a node host.
mn_node_url() {
    local ip
    read -r ip _ <<<"$(mn_node_ips "$1")"
    echo "ws://$ip:$MN_NODE_HTTP_PORT/ws"
}

# The signaling URL a peer uses: an IPv6-only peer (testnet/shapes.sh v6) reaches node1 at its
# IPv6 address, every other peer at the host's IPv4 one.
mn_node_url_for() {
    case $1 in
        v6only-*) echo "ws://$MN_V6_NODE1_NAME:$MN_NODE_HTTP_PORT/ws" ;;
        *) mn_node_url "$2" ;;
    esac
}

# --- peers -----------------------------------------------------------------------------------
# mn_peer_args NAME: the identity and pin options of peer NAME (made on first use).
mn_peer_args() {
    local name=$1 id="$MN_CALL_DIR/peers/$1.key"
    mkdir -p "$MN_CALL_DIR/peers"
    [ -f "$id" ] || "$MESHNODE" keygen --identity "$id" >/dev/null
    echo "--name $name --identity $id --known-peers $MN_CALL_DIR/peers/$name.pins.json"
}

# Whether `meshnode join` records received media (--record DIR).
mn_join_can_record() {
    [ -z "${MN_JOIN_RECORD:-}" ] || { [ "$MN_JOIN_RECORD" = 1 ]; return; }
    if "$MESHNODE" join --help 2>/dev/null | grep -q -- '--record'; then MN_JOIN_RECORD=1; else MN_JOIN_RECORD=0; fi
    [ "$MN_JOIN_RECORD" = 1 ]
}

# mn_join_start ROUTER NAME NODE_HOST: peer NAME behind ROUTER stays online at the node and
# answers calls (`--accept auto`), recording what it receives into $MN_CALL_DIR/rec-NAME when
# join can. Its JSON events, timestamped, go to $MN_CALL_DIR/join-NAME.log. Sets MN_JOIN_PID.
# Waits (10 s at most) until it is logged in.
mn_join_start() {
    local router=$1 name=$2 host=$3 log="$MN_CALL_DIR/join-$2.log" record=()
    if mn_join_can_record; then
        rm -rf "$MN_CALL_DIR/rec-$name"
        mkdir -p "$MN_CALL_DIR/rec-$name"
        record=(--record "$MN_CALL_DIR/rec-$name")
    fi
    # shellcheck disable=SC2046
    ip netns exec "${MN_PREFIX}p-$router" "$MESHNODE" join --node "$(mn_node_url_for "$router" "$host")" $(mn_peer_args "$name") \
        --accept auto "${record[@]}" --json </dev/null > >(mn_stamp >"$log") 2>&1 9>&- &
    MN_JOIN_PID=$!
    for _ in $(seq 1 100); do
        grep -q '"event":"connected"' "$log" 2>/dev/null && return 0
        kill -0 "$MN_JOIN_PID" 2>/dev/null || break
        sleep 0.1
    done
    mn_log "peer $name behind $router did not log in: $(tail -3 "$log")"
    return 1
}

# mn_join_report NAME OUT: waits (3 s at most) for the report of the call that peer NAME
# answered (`"event":"call-ended"` in its log) and writes it to OUT ({} when there is none).
mn_join_report() {
    local log="$MN_CALL_DIR/join-$1.log"
    for _ in $(seq 1 30); do
        grep -q '"event":"call-ended"' "$log" 2>/dev/null && break
        sleep 0.1
    done
    grep '"event":"call-ended"' "$log" 2>/dev/null | tail -1 | cut -d' ' -f2- | jq -c . 2>/dev/null >"$2" || true
    [ -s "$2" ] || echo '{}' >"$2"
}

mn_join_stop() {
    local pid=${1:-$MN_JOIN_PID}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# mn_call ROUTER NAME TO NODE_HOST DURATION OUT [ARGS...]: peer NAME behind ROUTER calls TO with
# audio and video for DURATION s; the summary goes to OUT, stderr to OUT.err. Returns call's
# exit status (124 on a timeout of DURATION + 60 s).
mn_call() {
    local router=$1 name=$2 to=$3 host=$4 duration=$5 out=$6
    shift 6
    # shellcheck disable=SC2046
    timeout --kill-after=5 $((duration + 60)) ip netns exec "${MN_PREFIX}p-$router" "$MESHNODE" call "$to" \
        --node "$(mn_node_url_for "$router" "$host")" $(mn_peer_args "$name") --audio --video --duration "$duration" --json "$@" \
        </dev/null >"$out" 2>"$out.err" 9>&-
}

# mn_call_start …: mn_call in the background; sets MN_CALL_PID.
mn_call_start() {
    mn_call "$@" &
    MN_CALL_PID=$!
}

# mn_summary FILE JQ: a field of a call summary ("" when the file is no JSON object).
mn_summary() {
    jq -er "$2 // empty" "$1" 2>/dev/null | head -1 || true
}

# The path of a summary: "direct", "relay" or either with "/tcp" for TCP transport, "-" when none.
mn_summary_path() {
    local local_type remote_type transport kind
    local_type=$(mn_summary "$1" .path.local)
    remote_type=$(mn_summary "$1" .path.remote)
    transport=$(mn_summary "$1" .path.transport)
    [ -n "$local_type" ] || { echo "-"; return; }
    if [ "$local_type" = relay ] || [ "$remote_type" = relay ]; then kind=relay; else kind=direct; fi
    case $transport in tcp | tls) echo "$kind/tcp" ;; *) echo "$kind" ;; esac
}

# Frames (video) recorded by a joined peer, counted by ffprobe; "-" without a recording.
mn_recorded_video_frames() {
    local dir="$MN_CALL_DIR/rec-$1" file
    file=$(find "$dir" -maxdepth 2 -name '*.ivf' -o -maxdepth 2 -name '*.webm' 2>/dev/null | head -1)
    if [ -z "$file" ] || ! command -v ffprobe >/dev/null 2>&1; then echo "-"; return; fi
    ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$file" 2>/dev/null | head -1 || echo "-"
}

# --- media flow ------------------------------------------------------------------------------
# A counter of the bytes each router forwards into its LAN (what reaches the peer behind it),
# sampled every 0.2 s while a call runs: independent of what meshnode reports about itself.
# ROUTER may be "R1+R2" (a peer with two uplinks, testnet/shapes.sh roam): both count.
mn_flow_counter_add() {
    local r
    case $1 in *+*) for r in ${1//+/ }; do mn_flow_counter_add "$r"; done; return 0 ;; esac
    ip netns exec "${MN_PREFIX}r-$1" nft -f - <<EOF
table ip mnmon
delete table ip mnmon
table ip mnmon {
    counter lan_in { }
    counter turn_tcp { }
    counter turn_tls { }
    chain forward {
        type filter hook forward priority filter - 10; policy accept;
        iifname "wan0" oifname "lan0" counter name "lan_in"
        iifname "lan0" oifname "wan0" tcp dport $MN_TURN_PORT counter name "turn_tcp"
        iifname "lan0" oifname "wan0" tcp dport $MN_TURNS_PORT counter name "turn_tls"
    }
}
EOF
}

# mn_turn_transport ROUTER: how the peer behind ROUTER reached TURN since its counters were
# (re)made by mn_flow_counter_add, judged by the bytes it sent to the TURN ports over TCP:
# "tcp 412 kB", "tls 388 kB", both, or nothing. Below MN_TURN_TCP_MIN (100000 bytes) it was
# allocations and ICE checks, not media (a 6 s call sends about 400 kB of media each way).
mn_turn_transport() {
    local tcp tls out="" min=${MN_TURN_TCP_MIN:-100000}
    tcp=$(mn_flow_bytes "$1" turn_tcp)
    tls=$(mn_flow_bytes "$1" turn_tls)
    [ "${tcp:-0}" -ge "$min" ] && out="tcp $((tcp / 1000)) kB"
    [ "${tls:-0}" -ge "$min" ] && out="${out:+$out + }tls $((tls / 1000)) kB"
    echo "$out"
}

mn_flow_bytes() {
    local r sum=0 n
    case $1 in *+*)
        for r in ${1//+/ }; do n=$(mn_flow_bytes "$r" "${2:-}"); sum=$((sum + ${n:-0})); done
        echo "$sum"; return 0 ;;
    esac
    ip netns exec "${MN_PREFIX}r-$1" nft list counter ip mnmon "${2:-lan_in}" 2>/dev/null | awk '/bytes/ { for (i = 1; i < NF; i++) if ($i == "bytes") print $(i + 1) }'
}

# mn_flow_start OUT ROUTER_A ROUTER_B: samples "time bytes_into_A bytes_into_B" into OUT.
# Sets MN_FLOW_PID.
mn_flow_start() {
    local out=$1 ra=$2 rb=$3
    mn_flow_counter_add "$ra"
    mn_flow_counter_add "$rb"
    (
        while :; do
            echo "$(mn_now) $(mn_flow_bytes "$ra") $(mn_flow_bytes "$rb")"
            sleep 0.2
        done
    ) >"$out" 2>/dev/null 9>&- &
    MN_FLOW_PID=$!
}

mn_flow_stop() {
    [ -n "${MN_FLOW_PID:-}" ] || return 0
    kill "$MN_FLOW_PID" 2>/dev/null || true
    wait "$MN_FLOW_PID" 2>/dev/null || true
    MN_FLOW_PID=""
}

# mn_flow_analyse FILE FROM TO [FLOWING]: media flows both ways at a time when each router forwarded at
# least MN_FLOW_MIN bytes (default 4000) into its LAN in the 0.5 s before it (audio alone is
# about 3 kB per 0.5 s, video several times that; STUN checks and signaling stay below).
# Prints "first_flow outage_end longest_gap" for the window FROM..TO (epoch seconds):
#   first_flow   first time both ways flowed after FROM ("-" never)
#   outage_end   the end of the last interruption that started after FROM and the first flow
#                ("-" when none), i.e. when media was back
#   longest_gap  the longest interruption (s) after the first flow, 0 if none
# With FLOWING=1 media is known to flow at FROM (a fault injected then): an interruption may
# start at once.
mn_flow_analyse() {
    awk -v from="$2" -v to="$3" -v flowing_at_start="${4:-0}" -v min="${MN_FLOW_MIN:-4000}" '
        NF == 3 { t[n] = $1; a[n] = $2; b[n] = $3; n++ }
        END {
            first = flowing_at_start ? from : "-"; end = "-"; gap = 0; down = -1; j = 0
            for (i = 0; i < n; i++) {
                if (t[i] < from || t[i] > to) continue
                while (j < i && t[j] < t[i] - 0.5) j++
                if (j == i || t[i] - t[j] < 0.3) continue
                flowing = (a[i] - a[j] >= min && b[i] - b[j] >= min)
                if (first == "-") { if (flowing) first = t[i]; continue }
                if (!flowing && down < 0) down = t[i]
                if (flowing && down >= 0) {
                    if (t[i] - down > gap) gap = t[i] - down
                    end = t[i]; down = -1
                }
            }
            if (down >= 0) { end = "never"; gap = to - down }
            printf "%s %s %.3f\n", first, end, gap
        }' "$1"
}
