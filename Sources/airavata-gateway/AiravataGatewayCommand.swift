import ArgumentParser

@main
struct AiravataGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "airavata-gateway",
        abstract: "A clustered WebSocket gateway for the Airavata Scheduler's real-time protocol.",
        discussion: """
            Every `serve` flag can also be set through an environment variable: AIRAVATA_ followed by the \
            flag name in capitals with dashes as underscores (--jwt-secret is AIRAVATA_JWT_SECRET). A flag \
            wins over its variable.
            """,
        subcommands: [ServeCommand.self, TokenCommand.self, PublishCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}
