extension VideoFrame {
    /// This picture at half the width and height (rounded up), each output pixel the mean of the
    /// 2×2 input pixels it covers: the step from one simulcast layer to the next lower one
    /// (docs/rooms.md "Simulcast"). A box filter is enough at a factor of two and costs one pass.
    ///
    /// - Throws: ``CodecError`` `.invalidArgument` when the result would be narrower or lower than 2 pixels.
    public func halved() throws(CodecError) -> VideoFrame {
        let outWidth = (width + 1) / 2, outHeight = (height + 1) / 2
        guard outWidth >= 2, outHeight >= 2 else {
            throw CodecError(.invalidArgument, "a \(width)×\(height) picture cannot be halved (needs at least 3 pixels per side)")
        }
        let y = Self.halve(plane: self.y, width: width, height: height)
        let u = Self.halve(plane: self.u, width: chromaWidth, height: chromaHeight)
        let v = Self.halve(plane: self.v, width: chromaWidth, height: chromaHeight)
        // The chroma of the result is ⌈outWidth/2⌉ wide; halving the input chroma gives exactly that.
        return VideoFrame(unchecked: outWidth, outHeight, y, u, v)
    }

    /// One plane at half size; an odd last column or row is averaged with itself.
    private static func halve(plane: [UInt8], width: Int, height: Int) -> [UInt8] {
        let outWidth = (width + 1) / 2, outHeight = (height + 1) / 2
        return [UInt8](unsafeUninitializedCapacity: outWidth * outHeight) { output, count in
            plane.withUnsafeBufferPointer { input in
                for row in 0..<outHeight {
                    let top = 2 * row * width
                    let bottom = min(2 * row + 1, height - 1) * width
                    for column in 0..<outWidth {
                        let left = 2 * column, right = min(2 * column + 1, width - 1)
                        let sum = Int(input[top + left]) + Int(input[top + right]) + Int(input[bottom + left]) + Int(input[bottom + right])
                        output[row * outWidth + column] = UInt8((sum + 2) >> 2)
                    }
                }
            }
            count = outWidth * outHeight
        }
    }
}
