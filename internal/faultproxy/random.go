package faultproxy

import "math/rand/v2"

// Random returns Rules that fault each request with probability rate,
// choosing uniformly among faults. The choice for the request numbered n
// depends only on seed and n, so the same seed replays the same faults on
// the same request sequence. Connections are left alone.
func Random(seed uint64, rate float64, faults ...Fault) Rules {
	if len(faults) == 0 || rate <= 0 {
		return Rules{}
	}
	pick := func(n int64) Fault {
		r := rand.New(rand.NewPCG(seed, uint64(n)))
		if r.Float64() >= rate {
			return Fault{}
		}
		return faults[r.IntN(len(faults))]
	}
	return Rules{Request: func(req Request) Fault { return pick(req.Seq) }}
}
