import Foundation
public import Codecs

/// Test sources: a moving video pattern with the frame number drawn as bits, and a voice-like signal.
public enum SyntheticMedia {
    public static let numberBits = 12
    public static let bitSquare = 16

    /// A smooth moving pattern, a moving bright box, and the frame number as 12 black/white squares
    /// along the top-left edge so that a receiver can read it back after decoding.
    public static func videoFrame(number: Int, width: Int, height: Int) throws -> VideoFrame {
        var y = [UInt8](repeating: 0, count: width * height)
        let phase = Double(number)
        for row in 0..<height {
            let vertical = 0.5 + 0.5 * cos((Double(row) - 2 * phase) / 17.0)
            for column in 0..<width {
                let horizontal = 0.5 + 0.5 * sin((Double(column) + 3 * phase) / 23.0)
                y[row * width + column] = UInt8(60 + 100 * horizontal * vertical)
            }
        }
        let box = 48
        let boxX = (number * 5) % (width - box)
        let boxY = 20 + (number * 3) % (height - box - 20)
        for row in boxY..<(boxY + box) {
            for column in boxX..<(boxX + box) { y[row * width + column] = 235 }
        }
        for bit in 0..<numberBits {
            let value: UInt8 = (number >> bit) & 1 == 1 ? 235 : 16
            for row in 0..<bitSquare {
                for column in (bit * bitSquare)..<((bit + 1) * bitSquare) { y[row * width + column] = value }
            }
        }
        let chromaWidth = (width + 1) / 2
        let chromaHeight = (height + 1) / 2
        var u = [UInt8](repeating: 128, count: chromaWidth * chromaHeight)
        var v = u
        for row in 0..<chromaHeight {
            for column in 0..<chromaWidth {
                u[row * chromaWidth + column] = UInt8(96 + (column * 64) / chromaWidth)
                v[row * chromaWidth + column] = UInt8(160 - (row * 64) / chromaHeight)
            }
        }
        return try VideoFrame(width: width, height: height, y: y, u: u, v: v)
    }

    /// Reads back the frame number drawn by ``videoFrame(number:width:height:)``.
    public static func frameNumber(of frame: VideoFrame) -> Int {
        var number = 0
        for bit in 0..<numberBits {
            let center = (bitSquare / 2) * frame.width + bit * bitSquare + bitSquare / 2
            if frame.y[center] > 128 { number |= 1 << bit }
        }
        return number
    }

    /// A voice-like test signal at 48 kHz: a 140 Hz glottal pulse train's harmonics shaped by two
    /// formants, with a 4 Hz syllable envelope and slight vibrato.
    public static func voice(frames: Int, channels: Int = 1) -> [[Int16]] {
        let rate = 48_000.0
        let samplesPerFrame = OpusAudioEncoder.frameSize
        var phase = 0.0
        var output: [[Int16]] = []
        for frame in 0..<frames {
            var pcm = [Int16]()
            pcm.reserveCapacity(samplesPerFrame * channels)
            for index in 0..<samplesPerFrame {
                let t = Double(frame * samplesPerFrame + index) / rate
                let f0 = 140 * (1 + 0.03 * sin(2 * Double.pi * 5 * t))
                phase += 2 * Double.pi * f0 / rate
                var sample = 0.0
                for harmonic in 1...20 {
                    let frequency = f0 * Double(harmonic)
                    let formants = exp(-pow((frequency - 700) / 250, 2)) + 0.6 * exp(-pow((frequency - 1200) / 300, 2)) + 0.1
                    sample += formants * sin(Double(harmonic) * phase) / Double(harmonic).squareRoot()
                }
                let envelope = 0.55 + 0.45 * sin(2 * Double.pi * 4 * t)
                let value = Int16(max(-32767, min(32767, 6000 * envelope * sample)))
                for _ in 0..<channels { pcm.append(value) }
            }
            output.append(pcm)
        }
        return output
    }

    /// Signal-to-noise ratio of `signal` against `reference`, in dB.
    public static func snr(_ signal: [Int16], reference: [Int16]) -> Double {
        var power = 0.0
        var noise = 0.0
        for (a, b) in zip(signal, reference) {
            power += Double(b) * Double(b)
            noise += (Double(a) - Double(b)) * (Double(a) - Double(b))
        }
        return noise == 0 ? .infinity : 10 * log10(power / noise)
    }
}
