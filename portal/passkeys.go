package portal

import "github.com/gorilla/mux"

func (s *Server) registerPasskeyRoutes(r *mux.Router) {}
