import { deploy, preflight, stackOutputs } from "./program";

// Pulumi takes the module's exports as the stack outputs; `stackOutputs` is the one list (review and tests read it).
// An async program (Pulumi awaits the exported function): the preflight's invokes (region capabilities, running plans)
// answer before any resource is declared.
export = async () => {
    const { topology, resizes } = await preflight();
    return stackOutputs(deploy(undefined, topology, resizes));
};
