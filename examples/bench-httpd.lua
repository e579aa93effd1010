-- wrk script for `make bench-httpd`: a summary a script can read.
-- wrk reports durations and latencies in microseconds.
done = function(summary, latency, requests)
	local e = summary.errors
	local errors = e.connect + e.read + e.write + e.status + e.timeout
	io.write(string.format("bench-httpd: requests/s: %.0f\n",
		summary.requests / (summary.duration / 1e6)))
	io.write(string.format("bench-httpd: p99 latency: %.3f ms\n",
		latency:percentile(99) / 1000))
	io.write(string.format("bench-httpd: errors: %d (connect %d, " ..
		"read %d, write %d, status %d, timeout %d)\n", errors,
		e.connect, e.read, e.write, e.status, e.timeout))
end
