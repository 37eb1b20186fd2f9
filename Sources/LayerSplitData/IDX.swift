import CZlib
import Foundation

/// One array in the IDX format of the MNIST family (LeCun et al.): a big-endian header — two zero bytes, an
/// element-type code, the number of dimensions, then each dimension as a 32-bit unsigned integer — followed by
/// the elements, row-major and big-endian.
///
/// `payload` keeps the element bytes exactly as in the file (big-endian); `floatValues()` and
/// `integerValues()` decode them.
public struct IDXArray: Sendable, Equatable {
    /// The element types IDX defines, by their type code.
    public enum ElementType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
        case uint8 = 0x08, int8 = 0x09, int16 = 0x0B, int32 = 0x0C, float32 = 0x0D, float64 = 0x0E

        public var size: Int {
            switch self {
            case .uint8, .int8: 1
            case .int16: 2
            case .int32, .float32: 4
            case .float64: 8
            }
        }

        public var isInteger: Bool { self != .float32 && self != .float64 }

        public var description: String {
            switch self {
            case .uint8: "uint8"
            case .int8: "int8"
            case .int16: "int16"
            case .int32: "int32"
            case .float32: "float32"
            case .float64: "float64"
            }
        }
    }

    public var type: ElementType
    /// The dimensions, outermost first (for an image file `[N, H, W]`).
    public var shape: [Int]
    /// The elements' bytes, big-endian, `shape`'s product times `type.size` of them.
    public var payload: [UInt8]

    public init(type: ElementType, shape: [Int], payload: [UInt8]) {
        precondition(!shape.isEmpty && shape.allSatisfy { $0 >= 0 } && shape.count <= 255, "IDX shape \(shape)")
        precondition(payload.count == shape.reduce(1, *) * type.size,
                     "\(payload.count) payload bytes for \(type) elements of shape \(shape)")
        self.type = type
        self.shape = shape
        self.payload = payload
    }

    /// An array of unsigned bytes (images, labels).
    public init(uint8 values: [UInt8], shape: [Int]) {
        self.init(type: .uint8, shape: shape, payload: values)
    }

    /// An array of 32-bit signed integers, stored big-endian.
    public init(int32 values: [Int32], shape: [Int]) {
        var bytes = [UInt8](); bytes.reserveCapacity(values.count * 4)
        for v in values { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }
        self.init(type: .int32, shape: shape, payload: bytes)
    }

    /// An array of 32-bit floats, stored big-endian.
    public init(float32 values: [Float], shape: [Int]) {
        var bytes = [UInt8](); bytes.reserveCapacity(values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.bigEndian) { bytes.append(contentsOf: $0) } }
        self.init(type: .float32, shape: shape, payload: bytes)
    }

    /// The number of elements.
    public var count: Int { shape.reduce(1, *) }

    /// Every element as a Float, row-major. With `bytesToUnit`, uint8 elements (pixels) are divided by 255 so
    /// that they lie in [0, 1]; other types are converted as they are.
    public func floatValues(bytesToUnit: Bool = false) -> [Float] {
        let n = count
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            payload.withUnsafeBytes { raw in
                let p = raw.baseAddress!
                switch type {
                case .uint8:
                    let b = p.assumingMemoryBound(to: UInt8.self)
                    if bytesToUnit {
                        for i in 0..<n { out[i] = Float(b[i]) / 255 }
                    } else {
                        for i in 0..<n { out[i] = Float(b[i]) }
                    }
                case .int8:
                    let b = p.assumingMemoryBound(to: Int8.self)
                    for i in 0..<n { out[i] = Float(b[i]) }
                case .int16:
                    for i in 0..<n { out[i] = Float(Int16(bitPattern: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).bigEndian)) }
                case .int32:
                    for i in 0..<n { out[i] = Float(Int32(bitPattern: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).bigEndian)) }
                case .float32:
                    for i in 0..<n { out[i] = Float(bitPattern: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).bigEndian) }
                case .float64:
                    for i in 0..<n { out[i] = Float(Double(bitPattern: p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).bigEndian)) }
                }
            }
            initialized = n
        }
    }

    /// Every element as an integer, row-major; nil for a float type.
    public func integerValues() -> [Int]? {
        guard type.isInteger else { return nil }
        return payload.withUnsafeBytes { raw in
            let p = raw.baseAddress!
            return (0..<count).map { i -> Int in
                switch type {
                case .uint8: Int(p.load(fromByteOffset: i, as: UInt8.self))
                case .int8: Int(p.load(fromByteOffset: i, as: Int8.self))
                case .int16: Int(Int16(bitPattern: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).bigEndian))
                default: Int(Int32(bitPattern: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).bigEndian))
                }
            }
        }
    }
}

/// Reads and writes IDX files, gzip-compressed (by zlib, recognised by the gzip magic bytes, whatever the name)
/// or plain.
public enum IDX {
    /// Reads the IDX array in `path`.
    ///
    /// Throws `DataError.file` naming `path` when the file is missing, is not IDX, is truncated (its payload
    /// is shorter than its header's sizes say), has bytes beyond that payload, or is a damaged gzip stream.
    public static func read(contentsOf path: String) throws -> IDXArray {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DataError.file(path: path, problem: "no such file")
        }
        guard !isDirectory.boolValue else { throw DataError.file(path: path, problem: "is a folder, not an IDX file") }
        let fileSize = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
        let compressed = try isGzip(path)
        guard let gz = gzopen(path, "rb") else {
            throw DataError.file(path: path, problem: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { gzclose(gz) }
        _ = gzbuffer(gz, 1 << 20)
        var streamCut = false
        var cut: String { streamCut ? " (the gzip stream ends early: the file was cut short)" : "" }

        func readExactly(_ count: Int, into buffer: UnsafeMutableRawPointer) throws -> Int {
            var done = 0
            while done < count {
                let chunk = UInt32(min(count - done, 1 << 30))
                let r = gzread(gz, buffer + done, chunk)
                if r < 0 { throw DataError.file(path: path, problem: "damaged gzip stream: \(gzipMessage(gz))") }
                if r == 0 { break }
                done += Int(r)
            }
            // A gzip stream cut short reads as a short read with Z_BUF_ERROR set; the caller reports it as
            // truncated, with the sizes.
            var code: Int32 = 0
            _ = gzerror(gz, &code)
            if code == Z_BUF_ERROR {
                streamCut = true
            } else if code != Z_OK && code != Z_STREAM_END {
                throw DataError.file(path: path, problem: "damaged gzip stream: \(gzipMessage(gz))")
            }
            return done
        }

        var magic = [UInt8](repeating: 0, count: 4)
        let got = try magic.withUnsafeMutableBytes { try readExactly(4, into: $0.baseAddress!) }
        guard got == 4 else { throw DataError.file(path: path, problem: "truncated: \(got) bytes, too short for an IDX header\(cut)") }
        guard magic[0] == 0, magic[1] == 0, let type = IDXArray.ElementType(rawValue: magic[2]), magic[3] >= 1 else {
            throw DataError.file(path: path, problem: String(
                format: "not an IDX file: magic bytes %02x %02x %02x %02x (expected 00 00, a type code 08/09/0b/0c/0d/0e, and 1 or more dimensions)",
                magic[0], magic[1], magic[2], magic[3]))
        }
        let rank = Int(magic[3])
        var dimBytes = [UInt8](repeating: 0, count: 4 * rank)
        let gotDims = try dimBytes.withUnsafeMutableBytes { try readExactly(4 * rank, into: $0.baseAddress!) }
        guard gotDims == 4 * rank else {
            throw DataError.file(path: path, problem: "truncated: the header declares \(rank) dimensions but ends after \(gotDims / 4)\(cut)")
        }
        let shape = (0..<rank).map { d -> Int in
            var v: UInt32 = 0
            for k in 0..<4 { v = v << 8 | UInt32(dimBytes[4 * d + k]) }
            return Int(v)
        }
        let header = 4 + 4 * rank
        let shapeText = shape.map(String.init).joined(separator: " x ")
        var expected = type.size
        for d in shape {
            let (m, overflow) = expected.multipliedReportingOverflow(by: d)
            guard !overflow, m <= 1 << 40 else {
                throw DataError.file(path: path, problem: "the header's sizes \(shapeText) are implausibly large; the header is damaged")
            }
            expected = m
        }
        // Bound the payload by the file's size before allocating: deflate cannot expand by more than ~1032x.
        let bound = compressed ? fileSize * 1100 + 1 << 16 : fileSize - header
        guard expected <= bound else {
            throw DataError.file(path: path, problem: "header says \(shapeText) \(type) (\(expected) bytes) but the file holds at most \(max(bound, 0)) bytes of payload; truncated or a damaged header")
        }
        var payload = [UInt8](repeating: 0, count: expected)
        let gotPayload = try payload.withUnsafeMutableBytes { try readExactly(expected, into: $0.baseAddress!) }
        guard gotPayload == expected else {
            throw DataError.file(path: path, problem: "truncated: header says \(shapeText) \(type) (\(expected) bytes) but the payload has only \(gotPayload) bytes\(cut)")
        }
        var extra = [UInt8](repeating: 0, count: 4096)
        var extraCount = 0
        while true {
            let r = try extra.withUnsafeMutableBytes { try readExactly(4096, into: $0.baseAddress!) }
            extraCount += r
            if r < 4096 { break }
        }
        guard extraCount == 0 else {
            throw DataError.file(path: path, problem: "header says \(shapeText) \(type) (\(expected) bytes) but the payload has \(expected + extraCount) bytes; the header's sizes disagree with the data")
        }
        return IDXArray(type: type, shape: shape, payload: payload)
    }

    /// Writes `array` to `path` in IDX, gzip-compressed when `compress` (the MNIST family's `.gz` files).
    public static func write(_ array: IDXArray, to path: String, compress: Bool = false) throws {
        var bytes: [UInt8] = [0, 0, array.type.rawValue, UInt8(array.shape.count)]
        for d in array.shape {
            guard d <= Int(UInt32.max) else { throw DataError.file(path: path, problem: "dimension \(d) does not fit IDX's 32 bits") }
            withUnsafeBytes(of: UInt32(d).bigEndian) { bytes.append(contentsOf: $0) }
        }
        bytes += array.payload
        if compress {
            guard let gz = gzopen(path, "wb") else {
                throw DataError.file(path: path, problem: "cannot create: \(String(cString: strerror(errno)))")
            }
            var offset = 0
            while offset < bytes.count {
                let n = min(bytes.count - offset, 1 << 30)
                let w = bytes.withUnsafeBytes { gzwrite(gz, $0.baseAddress! + offset, UInt32(n)) }
                guard w == n else {
                    let message = gzipMessage(gz)
                    gzclose(gz)
                    throw DataError.file(path: path, problem: "write failed: \(message)")
                }
                offset += n
            }
            guard gzclose(gz) == Z_OK else { throw DataError.file(path: path, problem: "write failed on close") }
        } else {
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
                throw DataError.file(path: path, problem: "cannot create: \(String(cString: strerror(errno)))")
            }
        }
    }

    private static func isGzip(_ path: String) throws -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw DataError.file(path: path, problem: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { try? h.close() }
        let head = (try? h.read(upToCount: 2)) ?? Data()
        return head.count == 2 && head[head.startIndex] == 0x1F && head[head.startIndex + 1] == 0x8B
    }

    private static func gzipMessage(_ gz: gzFile) -> String {
        var code: Int32 = 0
        guard let m = gzerror(gz, &code) else { return "zlib error \(code)" }
        return String(cString: m)
    }
}
