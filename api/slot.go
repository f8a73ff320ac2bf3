package api

import (
	"hash/crc32"
	"unsafe"
)

// SlotCount is the number of hash slots the SKU space is cut into. Slots, not SKUs, are
// what the placement assigns to raft groups, so it bounds the number of data groups a
// cluster can ever have and the finest share of the key space a split or merge can move.
// 1024 leaves every group of a cluster of up to 64 groups at least 16 slots to split or
// hand over (under 0.1% of the keys each), and the whole table fits in 4 KiB, or in a few
// ranges per group on the wire. It can never change: a SKU's slot is part of every stored
// placement.
const SlotCount = 1024

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SlotOf is the slot a SKU lives in: CRC-32C (Castagnoli) of the SKU's bytes, modulo
// SlotCount. Every node and every client must agree on it, forever, so neither the hash
// nor the slot count may ever change (a changed function would move SKUs away from the
// groups that hold their state). CRC-32C is in the standard library, runs in hardware on
// amd64 and arm64, and spreads even near-identical SKU names evenly over the slots (see
// the tests); it is not meant to resist chosen keys, and a SKU's group is no secret.
func SlotOf(sku string) int {
	// The client routes every call through here. []byte(sku) would copy the SKU to the
	// heap (crc32 dispatches through a function value, so escape analysis gives up);
	// crc32 only reads its input, so it may read the string's bytes in place.
	b := unsafe.Slice(unsafe.StringData(sku), len(sku))
	return int(crc32.Checksum(b, castagnoli) % SlotCount)
}
