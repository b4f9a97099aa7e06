package strictjson

// maxScanKeys is the most members an object's names are compared pairwise
// for; more are checked with a set.
const maxScanKeys = 16

// unique returns ErrDuplicateKey for the first of keys, in order, whose
// name an earlier one has.
func (p *parser) unique(keys []member) error {
	if len(keys) <= maxScanKeys {
		// seen has the nameBit of each name so far. A name whose bit is not
		// set yet cannot repeat an earlier one; only the others are compared
		// with the names before them.
		var seen uint64
		for j, k := range keys {
			b := nameBit(k.name)
			if seen&b != 0 {
				for _, e := range keys[:j] {
					if e.name == k.name {
						return duplicate(k)
					}
				}
			}
			seen |= b
		}
		return nil
	}
	if p.seen == nil {
		p.seen = make(map[string]struct{}, len(keys))
	}
	defer clear(p.seen)
	for _, k := range keys {
		if _, ok := p.seen[k.name]; ok {
			return duplicate(k)
		}
		p.seen[k.name] = struct{}{}
	}
	return nil
}

// nameBit picks one of 64 bits for a member name, from its length and first
// and last bytes; equal names pick the same bit.
func nameBit(name string) uint64 {
	h := len(name)
	if h > 0 {
		h += 7*int(name[0]) + int(name[len(name)-1])
	}
	return 1 << (h & 63)
}

func duplicate(k member) error {
	return fail(ErrDuplicateKey, k.off, "member %q appears twice", k.name)
}
