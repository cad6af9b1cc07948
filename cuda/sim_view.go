package cuda

var _ Viewer = (*Sim)(nil)

// View returns a read-only view of allocation h's bytes.
func (s *Sim) View(h Handle) (*View, error) {
	a, err := s.lookup("view", h, 0, 0)
	if err != nil {
		return nil, err
	}
	return &View{size: a.size, readAt: func(p []byte, off int64) error { return s.Read(h, off, p) }}, nil
}
