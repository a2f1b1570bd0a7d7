import { deploy, stackOutputs } from "./program";

// Pulumi takes the module's exports as the stack outputs; `stackOutputs` is the one list (review and tests read it).
export = stackOutputs(deploy());
