// A summary of RTCPeerConnection.getStats() for people and tests: the selected path, RTT,
// bitrates, frames decoded, packets lost and audio received.

function bitrate(now, before, bytesKey) {
  if (!before || now.time <= before.time) return null;
  const bytes = (now[bytesKey] ?? 0) - (before[bytesKey] ?? 0);
  return Math.max(0, Math.round((bytes * 8) / (now.time - before.time)));
}

/** The summary of `report` (an RTCStatsReport); `previous` is the last summary, for bitrates. */
export function summarize(report, previous = null) {
  const byId = new Map();
  report.forEach((s) => byId.set(s.id, s));
  const summary = {
    time: Date.now(),
    path: null,
    rttMs: null,
    video: { framesDecoded: 0, framesReceived: 0, packetsReceived: 0, packetsLost: 0, bytesReceived: 0, frameWidth: 0, frameHeight: 0, fps: 0, kbps: null },
    audio: { packetsReceived: 0, packetsLost: 0, totalSamplesReceived: 0, bytesReceived: 0, audioLevel: 0, kbps: null },
    sent: { video: { framesEncoded: 0, packetsSent: 0, bytesSent: 0, kbps: null }, audio: { packetsSent: 0, bytesSent: 0, kbps: null } },
  };
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = byId.get(s.selectedCandidatePairId) || pair;
  });
  if (!pair) {
    report.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    });
  }
  if (pair) {
    const local = byId.get(pair.localCandidateId) || {};
    const remote = byId.get(pair.remoteCandidateId) || {};
    summary.path = {
      local: local.candidateType || null,
      remote: remote.candidateType || null,
      protocol: local.protocol || null,
      relayProtocol: local.relayProtocol || null,
      localAddress: local.address ? `${local.address}:${local.port}` : null,
      remoteAddress: remote.address ? `${remote.address}:${remote.port}` : null,
      relayed: local.candidateType === 'relay' || remote.candidateType === 'relay',
    };
    if (typeof pair.currentRoundTripTime === 'number') summary.rttMs = Math.round(pair.currentRoundTripTime * 1000);
  }
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      const v = summary.video;
      v.framesDecoded += s.framesDecoded || 0;
      v.framesReceived += s.framesReceived || 0;
      v.packetsReceived += s.packetsReceived || 0;
      v.packetsLost += s.packetsLost || 0;
      v.bytesReceived += s.bytesReceived || 0;
      v.frameWidth = Math.max(v.frameWidth, s.frameWidth || 0);
      v.frameHeight = Math.max(v.frameHeight, s.frameHeight || 0);
      v.fps = Math.max(v.fps, s.framesPerSecond || 0);
    } else if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      const a = summary.audio;
      a.packetsReceived += s.packetsReceived || 0;
      a.packetsLost += s.packetsLost || 0;
      a.totalSamplesReceived += s.totalSamplesReceived || 0;
      a.bytesReceived += s.bytesReceived || 0;
      a.audioLevel = Math.max(a.audioLevel, s.audioLevel || 0);
    } else if (s.type === 'outbound-rtp' && (s.kind === 'video' || s.kind === 'audio')) {
      const o = summary.sent[s.kind];
      o.packetsSent += s.packetsSent || 0;
      o.bytesSent += s.bytesSent || 0;
      if (s.kind === 'video') o.framesEncoded += s.framesEncoded || 0;
    } else if (s.type === 'remote-inbound-rtp' && summary.rttMs === null && typeof s.roundTripTime === 'number') {
      summary.rttMs = Math.round(s.roundTripTime * 1000);
    }
  });
  const flat = (s) => ({ time: s.time, v: s.video.bytesReceived, a: s.audio.bytesReceived, sv: s.sent.video.bytesSent, sa: s.sent.audio.bytesSent });
  if (previous) {
    const now = flat(summary);
    const before = flat(previous);
    summary.video.kbps = bitrate(now, before, 'v');
    summary.audio.kbps = bitrate(now, before, 'a');
    summary.sent.video.kbps = bitrate(now, before, 'sv');
    summary.sent.audio.kbps = bitrate(now, before, 'sa');
  }
  return summary;
}

/**
 * Lines for people, in the page's language: `t(key, params)` is i18n.js's (messages-*.js
 * `stats.*`): whether the path is direct or relayed, round trip, what arrives, loss, what leaves.
 */
export function describe(summary, t) {
  if (!summary) return [t('stats.none')];
  const p = summary.path;
  const rate = (kbps) => (kbps === null ? '–' : t('stats.rate', { kbps }));
  const protocol = (p?.protocol || '').toUpperCase();
  const lines = [p ? t(p.relayed ? 'stats.relayed' : 'stats.direct', { protocol }) : t('stats.noPath')];
  if (summary.rttMs !== null) lines.push(t('stats.rtt', { ms: summary.rttMs }));
  lines.push(t('stats.videoIn', { rate: rate(summary.video.kbps), frames: summary.video.framesDecoded }));
  if (summary.video.frameWidth) {
    lines.push(t('stats.videoSize', { width: summary.video.frameWidth, height: summary.video.frameHeight, fps: summary.video.fps || 0 }));
  }
  lines.push(t('stats.audioIn', { rate: rate(summary.audio.kbps) }));
  lines.push(t('stats.lost', { count: summary.video.packetsLost + summary.audio.packetsLost }));
  lines.push(t('stats.out', { video: rate(summary.sent.video.kbps), audio: rate(summary.sent.audio.kbps) }));
  return lines;
}
