// libipmimonitoring (Debian libipmimonitoring-dev): interpreted sensor readings over IPMI.
#include <ipmi_monitoring.h>
#include <ipmi_monitoring_bitmasks.h>
