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
    audio: { packetsReceived: 0, packetsLost: 0, totalSamplesReceived: 0, bytesReceived: 0, audioLevel: 0, totalAudioEnergy: 0, kbps: null },
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
      a.totalAudioEnergy += s.totalAudioEnergy || 0;
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
    // Loss since the last sample, of what was expected (received + lost), in percent.
    const lost = summary.video.packetsLost + summary.audio.packetsLost - previous.video.packetsLost - previous.audio.packetsLost;
    const received = summary.video.packetsReceived + summary.audio.packetsReceived - previous.video.packetsReceived - previous.audio.packetsReceived;
    summary.lossPct = lost + received > 0 ? Math.max(0, Math.round((1000 * lost) / (lost + received)) / 10) : null;
  } else {
    summary.lossPct = null;
  }
  summary.quality = quality(summary);
  return summary;
}

/**
 * Limits of the quality indicator. The round-trip limits follow ITU-T G.114 (one-way delay
 * under 150 ms is good for conversation, over 400 ms is not acceptable; here applied to the
 * round trip, which is what getStats measures, so on the strict side). Loss: Opus and VP8 hide
 * about 1 % well, 5 % is audible and visible. Bitrate: under 16 kb/s received in total, not even
 * speech arrives in good shape.
 */
export const QUALITY_LIMITS = { rttFairMs: 150, rttPoorMs: 400, lossFairPct: 1, lossPoorPct: 5, minKbps: 16 };

/**
 * `good`, `fair` or `poor` from the round trip, the loss since the last sample and the bitrate
 * received; `unknown` before there is a path and a rate. Every reason that lowers it is listed
 * (`rtt`, `loss`, `bitrate`), for the details. `receives`: false for a side that expects no
 * media (the sharer of a desktop call), whose bitrate received says nothing.
 */
export function quality(summary, { receives = true } = {}, limits = QUALITY_LIMITS) {
  if (!summary?.path || summary.video.kbps === null) return { level: 'unknown', reasons: [] };
  const reasons = [];
  let level = 0;
  const worse = (to, reason) => {
    level = Math.max(level, to);
    if (!reasons.includes(reason)) reasons.push(reason);
  };
  const rtt = summary.rttMs;
  if (rtt !== null && rtt > limits.rttPoorMs) worse(2, 'rtt');
  else if (rtt !== null && rtt > limits.rttFairMs) worse(1, 'rtt');
  const loss = summary.lossPct;
  if (loss !== null && loss > limits.lossPoorPct) worse(2, 'loss');
  else if (loss !== null && loss > limits.lossFairPct) worse(1, 'loss');
  const kbps = (summary.video.kbps || 0) + (summary.audio.kbps || 0);
  if (receives && kbps < limits.minKbps) worse(1, 'bitrate');
  return { level: ['good', 'fair', 'poor'][level], reasons };
}

/**
 * Lines for people, in the page's language: `t(key, params)` is i18n.js's (messages-*.js
 * `stats.*`): whether the path is direct or relayed, round trip, what arrives, loss, what leaves.
 */
export function describe(summary, t) {
  if (!summary) return [t('stats.none')];
  const p = summary.path;
  const q = summary.quality || quality(summary);
  const rate = (kbps) => (kbps === null ? '–' : t('stats.rate', { kbps }));
  const protocol = (p?.protocol || '').toUpperCase();
  const lines = [t('quality.badge', { level: t(`quality.${q.level}`) }) + (q.reasons.length ? ' — ' + q.reasons.map((r) => t(`quality.why.${r}`)).join(', ') : '')];
  lines.push(p ? t(p.relayed ? 'stats.relayed' : 'stats.direct', { protocol }) : t('stats.noPath'));
  if (summary.rttMs !== null) lines.push(t('stats.rtt', { ms: summary.rttMs }));
  lines.push(t('stats.videoIn', { rate: rate(summary.video.kbps), frames: summary.video.framesDecoded }));
  if (summary.video.frameWidth) {
    lines.push(t('stats.videoSize', { width: summary.video.frameWidth, height: summary.video.frameHeight, fps: summary.video.fps || 0 }));
  }
  lines.push(t('stats.audioIn', { rate: rate(summary.audio.kbps) }));
  lines.push(t('stats.lost', { count: summary.video.packetsLost + summary.audio.packetsLost }));
  if (summary.lossPct !== null && summary.lossPct !== undefined) lines.push(t('stats.lossNow', { pct: summary.lossPct }));
  lines.push(t('stats.out', { video: rate(summary.sent.video.kbps), audio: rate(summary.sent.audio.kbps) }));
  return lines;
}
