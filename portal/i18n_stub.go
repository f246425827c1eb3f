package portal

// Each area replaces its catalog with its own file (i18n_<area>.go).
var (
	deSecurity  = map[string]string{}
	deTwoFactor = map[string]string{}
	dePasskeys  = map[string]string{}
	deAccess    = map[string]string{}
)
