package exposition

// The gzip member's CRC-32 (RFC 1952: the IEEE polynomial, reflected) of
// an answer whose pieces are compressed on several goroutines, each
// keeping the CRC of its own text: crc32Combine joins two pieces' CRCs
// without their text, which is not kept. hash/crc32 has no such function.
//
// The CRC of a message M is, in GF(2)[x] modulo the polynomial P,
// M·x^32 plus a term that depends on M's length only (the register's
// initial and final inversions). For A followed by B, with |B| = n
// bytes, the message is A·x^(8n) + B, so
//
//	crc(AB) = crc(A)·x^(8n) + crc(B)   (mod P)
//
// the length terms cancelling out as they do in zlib's crc32_combine.
// Multiplying by x^(8n) takes the squares x^(2^k) (one table of 32) and
// one product per set bit of n. In the reflected form the register's
// top bit is the coefficient of x^0.

// crcPoly is P reflected: hash/crc32's IEEE.
const crcPoly = 0xedb88320

// crcX2k holds x^(2^k) mod P, for k in [0, 32).
var crcX2k = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	for k := range t {
		t[k] = p
		p = crcMulModP(p, p)
	}
	return t
}()

// crcMulModP is a·b mod P, reflected.
func crcMulModP(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		// b·x mod P
		if b&1 != 0 {
			b = b>>1 ^ crcPoly
		} else {
			b >>= 1
		}
	}
	return p
}

// crcX8n is x^(8n) mod P.
func crcX8n(n int64) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n != 0; n, k = n>>1, k+1 {
		if n&1 != 0 {
			p = crcMulModP(crcX2k[k%32], p)
		}
	}
	return p
}

// crc32Combine is the CRC-32 of A followed by B from crcA, crcB and B's
// length in bytes.
func crc32Combine(crcA, crcB uint32, lenB int64) uint32 {
	return crcMulModP(crcX8n(lenB), crcA) ^ crcB
}
