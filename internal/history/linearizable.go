package history

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// The outcomes of CheckLinearizable, porcupine's.
const (
	Ok      = porcupine.Ok      // every key's history is linearizable
	Illegal = porcupine.Illegal // some key's history is not
	Unknown = porcupine.Unknown // the check timed out before deciding
)

// A Linearizability is the result of CheckLinearizable.
type Linearizability struct {
	Result porcupine.CheckResult // Ok, Illegal or Unknown
	// IllegalKeys are the keys whose history is not linearizable (sorted;
	// set when Result is Illegal).
	IllegalKeys []string
	// UndecidedKeys are the keys the check did not decide before the
	// timeout (sorted; set when Result is Unknown, and when Result is
	// Illegal but the timeout stopped other keys' checks).
	UndecidedKeys []string
	Keys, Ops     int           // keys and operations checked (failed reads are dropped)
	Elapsed       time.Duration // the time porcupine took
}

func (l Linearizability) String() string {
	s := fmt.Sprintf("linearizability: %s (%d ops on %d keys, checked in %v)", l.Result, l.Ops, l.Keys, l.Elapsed.Round(time.Millisecond))
	if len(l.IllegalKeys) > 0 {
		s += fmt.Sprintf("; not linearizable: %s", quoteAll(l.IllegalKeys))
	}
	if len(l.UndecidedKeys) > 0 {
		s += fmt.Sprintf("; undecided (timeout): %s", quoteAll(l.UndecidedKeys))
	}
	return s
}

func quoteAll(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = fmt.Sprintf("%q", k)
	}
	return strings.Join(q, ", ")
}

// regInput and regOutput are the model's operation input and output.
type regInput struct {
	Key   string
	Kind  Kind
	Value int64 // the version written
}

type regOutput struct {
	Value   int64 // the version read
	Unknown bool  // a write whose outcome is unknown
}

// registerModel is a register per key: a write sets the version, a read
// returns the current one; initially 0 (absent).
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		return partitionByKey(history)
	},
	Init: func() interface{} { return int64(0) },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		in := input.(regInput)
		if in.Kind == Write {
			return true, in.Value
		}
		return output.(regOutput).Value == state.(int64), state
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(regInput), output.(regOutput)
		if in.Kind == Write {
			if out.Unknown {
				return fmt.Sprintf("write(%q, v%d) ?", in.Key, in.Value)
			}
			return fmt.Sprintf("write(%q, v%d)", in.Key, in.Value)
		}
		return fmt.Sprintf("read(%q) -> v%d", in.Key, out.Value)
	},
	DescribeState: func(state interface{}) string { return fmt.Sprintf("v%d", state.(int64)) },
	DescribeOperationMetadata: func(info interface{}) string {
		if info == nil {
			return ""
		}
		return info.(string)
	},
}

// partitionByKey splits a history by key, keys sorted, so that the
// partitions come in the same order as sortedKeys.
func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	for _, op := range history {
		k := op.Input.(regInput).Key
		byKey[k] = append(byKey[k], op)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([][]porcupine.Operation, len(keys))
	for i, k := range keys {
		parts[i] = byKey[k]
	}
	return parts
}

// toPorcupine converts ops: failed or unfinished reads are dropped, writes
// with an unknown outcome get a return time after the end of the history
// (they may take effect any time after their invocation), and each
// (process, client) becomes a porcupine client id.
func toPorcupine(ops []Op) []porcupine.Operation {
	var horizon int64
	type pc struct{ p, c int }
	var clients []pc
	seen := map[pc]bool{}
	for _, op := range ops {
		horizon = max(horizon, op.Invoke, op.Return)
		if k := (pc{op.Process, op.Client}); !seen[k] {
			seen[k] = true
			clients = append(clients, k)
		}
	}
	sort.Slice(clients, func(i, j int) bool {
		if clients[i].p != clients[j].p {
			return clients[i].p < clients[j].p
		}
		return clients[i].c < clients[j].c
	})
	ids := map[pc]int{}
	for i, k := range clients {
		ids[k] = i
	}
	var hist []porcupine.Operation
	for _, op := range ops {
		if op.Kind == Read && op.Unknown() {
			continue
		}
		o := porcupine.Operation{
			ClientId: ids[pc{op.Process, op.Client}],
			Input:    regInput{Key: op.Key, Kind: op.Kind, Value: op.Value},
			Call:     op.Invoke,
			Return:   op.Return,
			Metadata: op.String(),
		}
		out := regOutput{}
		if op.Kind == Read {
			out.Value = op.Value
		} else {
			out.Unknown = op.Unknown()
			if out.Unknown {
				o.Return = horizon + 1
			}
		}
		o.Output = out
		hist = append(hist, o)
	}
	return hist
}

// CheckLinearizable checks with porcupine that the history of every key is
// linearizable for a register (a write sets the version, a read returns
// the current one, initially 0), the keys checked in parallel as partitions
// of one model. timeout bounds the check (0: none); when it passes first
// the result is Unknown. On Illegal, IllegalKeys names the keys at fault.
// If visualizePath is not empty, porcupine's interactive HTML visualization
// of the history and of the longest linearizations found is written there;
// the error is that of writing it.
func CheckLinearizable(ops []Op, timeout time.Duration, visualizePath string) (Linearizability, error) {
	hist := toPorcupine(ops)
	parts := partitionByKey(hist)
	res := Linearizability{Keys: len(parts), Ops: len(hist)}
	start := time.Now()
	result, info := porcupine.CheckOperationsVerbose(registerModel, hist, timeout)
	res.Elapsed = time.Since(start)
	res.Result = result

	if result != Ok {
		// A key is decided linearizable iff one of its partial
		// linearizations covers all its operations. Before the timeout
		// every key's check ran to the end, so the others are illegal;
		// once it passed, a key can be short because it was cut off.
		timedOut := timeout > 0 && res.Elapsed >= timeout
		partials := info.PartialLinearizations()
		for i, part := range parts {
			complete := false
			if i < len(partials) {
				for _, seq := range partials[i] {
					if len(seq) == len(part) {
						complete = true
					}
				}
			}
			if complete {
				continue
			}
			key := part[0].Input.(regInput).Key
			switch {
			case result == Illegal && !timedOut:
				res.IllegalKeys = append(res.IllegalKeys, key)
			case result == Illegal && porcupine.CheckOperationsTimeout(registerModel, part, timeout) == Illegal:
				res.IllegalKeys = append(res.IllegalKeys, key)
			default:
				res.UndecidedKeys = append(res.UndecidedKeys, key)
			}
		}
	}
	if visualizePath != "" {
		if err := porcupine.VisualizePath(registerModel, info, visualizePath); err != nil {
			return res, fmt.Errorf("history: writing the visualization: %w", err)
		}
	}
	return res, nil
}
