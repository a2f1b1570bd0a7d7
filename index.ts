import { program } from "./program";

// Pulumi calls an exported function and takes what it resolves to as the stack outputs. Async because the program
// asks Linode about its regions and reads its own last outputs before it declares anything (program.ts).
export = () => program();
