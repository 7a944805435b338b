package gateway

import "testing"

func TestParseReport(t *testing.T) {
	out := []byte(`# To display the perf.data header info, please use --header/--header-only options.
#
# Samples: 2K of event 'cpu-clock:ppp'
# Event count (approx.): 4837837827
#
# Children      Self  Symbol
# ........  ........  ..........
#
    45.03%     0.08%  [.] github.com/gohsm/gohsm/gateway/server.(*Server).handle
    35.31%     0.00%  [.] github.com/gohsm/gohsm/gateway/audit.(*Log).Write
    12.19%     0.00%  [.] os.(*File).Sync
     7.15%     0.00%  [.] github.com/gohsm/gohsm/gateway/transit.(*Engine).Encrypt
     3.00%     0.00%  [.] github.com/gohsm/gohsm/gateway/transit.(*Engine).Encrypt.func1
     4.77%     0.13%  [.] github.com/gohsm/gohsm/gateway/pool.(*Pool).Do
     1.00%     1.00%  [k] pvm_irq_enable
`)
	p := parseReport(out)
	if p.Samples != 2000 {
		t.Fatalf("samples %d", p.Samples)
	}
	want := map[string]float64{
		"gateway request handling (gateway/server handle)": 45.03,
		"audit log write (gateway/audit Write)":            35.31,
		"audit: fsync":                                     12.19,
		"Transit engine (gateway/transit)":                 7.15, // the best match, not a sum
		"token pool Do (session, find, the token call)":    4.77,
	}
	for k, v := range want {
		if p.Shares[k] != v {
			t.Errorf("%s: %v, want %v", k, p.Shares[k], v)
		}
	}
	if len(p.Shares) != len(want) {
		t.Errorf("shares %v", p.Shares)
	}
}
