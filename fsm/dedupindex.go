package fsm

import "hash/fnv"

// dedupIndex maps each request id in the exactly-once table to the seq of its record in
// bucketDedup. It holds up to DedupMax ids (millions), so it is keyed by a 64-bit hash of
// the id: a map without pointers, which the garbage collector does not scan. The hash
// only nominates a record; callers confirm the id by reading the record (lookupDedup and
// Remembers do), so a collision never answers for the wrong request. An id whose hash is
// already held by another live id goes to the small exact map instead.
type dedupIndex struct {
	byHash map[uint64]uint64 // hash(id) → seq, for the first live id with that hash
	exact  map[string]uint64 // ids whose hash was taken when they were added
	hash   func(string) uint64

	hs   []uint64 // warm's, reused
	sink uint64   // keeps warm's loads from being optimised away
}

// newDedupIndex makes an index with the given hash (nil: FNV-1a); tests pass one that
// collides to exercise the exact map.
func newDedupIndex(hash func(string) uint64) *dedupIndex {
	if hash == nil {
		hash = hashID
	}
	return &dedupIndex{byHash: map[uint64]uint64{}, exact: map[string]uint64{}, hash: hash}
}

func hashID(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// The methods take h, the index's hash of id, from the caller: apply hashes a request id
// once for its lookup and its record.

// warm hashes the request ids of a batch's commands (0 for a command without one) and
// touches their slots in byHash before the batch applies. With millions of ids the index
// is far larger than the caches, so each lookup is a cache (and TLB) miss: ~0.4 µs per
// command when taken one at a time between the commands' other work, a quarter of a
// follower's CPU at 512 buyers (BENCHMARKS.md, "The dedup index's cache misses"). Here the
// lookups do not depend on each other, so the processor overlaps their misses; apply's
// own lookups then find the lines cached. The slice is valid until the next call.
func (x *dedupIndex) warm(cmds []Command) []uint64 {
	hs := x.hs[:0]
	var s uint64
	for _, c := range cmds {
		var h uint64
		if c.RequestID != "" {
			h = x.hash(c.RequestID)
			s += x.byHash[h]
		}
		hs = append(hs, h)
	}
	x.hs, x.sink = hs, s
	return hs
}

// candidate returns the seq whose record may hold id; the caller confirms the id.
func (x *dedupIndex) candidate(id string, h uint64) (uint64, bool) {
	if seq, ok := x.exact[id]; ok {
		return seq, true
	}
	seq, ok := x.byHash[h]
	return seq, ok
}

// add records a live id. Live ids are unique in the table, so a hash already held belongs
// to another id.
func (x *dedupIndex) add(id string, h, seq uint64) {
	if _, taken := x.byHash[h]; taken {
		x.exact[id] = seq
		return
	}
	x.byHash[h] = seq
}

// remove forgets the record seq of id.
func (x *dedupIndex) remove(id string, h, seq uint64) {
	if s, ok := x.exact[id]; ok && s == seq {
		delete(x.exact, id)
		return
	}
	if x.byHash[h] == seq {
		delete(x.byHash, h)
	}
}

func (x *dedupIndex) len() int { return len(x.byHash) + len(x.exact) }
