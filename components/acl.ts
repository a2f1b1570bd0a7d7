import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ACL_USERS, passwordGenerations, type AclPasswords, type AclUser, type UserPasswords } from "../cloud-init";
import type { Topology } from "../topology";
import { aclChildren } from "./names";

export interface AclPasswordsArgs {
    topology: Topology;
}

/**
 * A generated password per ACL user and generation (`credentialsGeneration`): the current one, and the ones before
 * and after it, which every node also accepts (cloud-init/acl.ts). Raising the generation by one names a new "next"
 * password resource and drops the oldest: the engine creates the one and deletes the other, nothing else changes.
 */
export class AclUsers extends pulumi.ComponentResource {
    /** Every user's passwords (secret). */
    public readonly passwords: pulumi.Output<AclPasswords>;

    constructor(name: string, args: AclPasswordsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:acl:AclUsers", name, {}, opts);
        const current = args.topology.security.generation;
        const byUser = {} as Record<AclUser, pulumi.Output<UserPasswords>>;
        for (const user of ACL_USERS) {
            const generated = passwordGenerations(current).map(
                (g) =>
                    [
                        g,
                        new random.RandomPassword(
                            aclChildren.password(name, user, g),
                            { length: 32, special: false },
                            { parent: this },
                        ).result,
                    ] as const,
            );
            const currentPassword = generated.find(([g]) => g === current)?.[1];
            if (!currentPassword) throw new Error(`no password of generation ${String(current)} for ${user}`);
            byUser[user] = pulumi
                .all([currentPassword, pulumi.all(generated.map(([, p]) => p))])
                .apply(([c, accepted]) => ({ current: c, accepted }));
        }
        // The provider marks `result` secret, but only the engine applies that: say it here as well.
        this.passwords = pulumi.secret(
            pulumi
                .all(ACL_USERS.map((u) => byUser[u]))
                .apply(([admin, replication, sentinel, exporter, app]): AclPasswords => ({
                    admin,
                    replication,
                    sentinel,
                    exporter,
                    app,
                })),
        );
        this.registerOutputs({});
    }
}
