package read

import "testing"

// A topic's lag is its most lagging follower's (one of every partition, one per partition
// streamed alone), and stays while any of them runs.
func TestTopicLagIsTheMostLaggingFollowers(t *testing.T) {
	all := &follower{key: followerKey{topic: "lagT", partition: -1}, lag: 3}
	p0 := &follower{key: followerKey{topic: "lagT", partition: 0}, lag: 7}
	other := &follower{key: followerKey{topic: "lagU", partition: -1}, lag: 100}
	fanMu.Lock()
	for _, f := range []*follower{all, p0, other} {
		followers[f.key] = f
	}
	if got := topicLagLocked("lagT"); got != 7 {
		t.Errorf("lag of lagT: %d, want 7", got)
	}
	delete(followers, p0.key)
	if got := topicLagLocked("lagT"); got != 3 {
		t.Errorf("lag of lagT once its partition follower stopped: %d, want 3", got)
	}
	for _, f := range []*follower{all, other} {
		delete(followers, f.key)
	}
	fanMu.Unlock()
	// Stopping with none of its topic left takes the series away; no deadlock on fanMu either.
	p0.lagGone()
	if got := topicLagLocked("lagT"); got != 0 {
		t.Errorf("lag with no follower: %d", got)
	}
}
