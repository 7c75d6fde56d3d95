package components

import (
	"strconv"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ChromaDBPort is ChromaDB's port on the platform network.
const ChromaDBPort = 8000

// ChromaDBHost is ChromaDB's DNS name on the platform network.
const ChromaDBHost = "chromadb"

// ChromaDBArgs configure the ChromaDB vector store.
type ChromaDBArgs struct {
	ServiceArgs
}

// ChromaDB is the vector memory store, data in its named volume.
type ChromaDB struct {
	pulumi.ResourceState
	Service
}

// NewChromaDB declares the ChromaDB service. The healthcheck suits the 1.x images: they answer
// the heartbeat on /api/v2 and ship bash but neither curl, wget nor python.
func NewChromaDB(ctx *pulumi.Context, name string, args *ChromaDBArgs, opts ...pulumi.ResourceOption) (*ChromaDB, error) {
	c := &ChromaDB{}
	heartbeat := `exec 3<>/dev/tcp/127.0.0.1/` + strconv.Itoa(ChromaDBPort) +
		` && printf 'GET /api/v2/heartbeat HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 && head -n 1 <&3 | grep -q ' 200 '`
	svc, err := newService(ctx, name, c, args.ServiceArgs, ServiceDecl{Type: "maricusco:components:ChromaDB", Service: "chromadb", Spec: ContainerSpec{
		Aliases:       []string{ChromaDBHost},
		Ports:         args.ports(ChromaDBPort),
		HealthCheck:   []string{"CMD", "/bin/bash", "-c", heartbeat},
		WritablePaths: []string{"/tmp"},
	}, Data: args.DataAt("chromadb", "/data")}, opts)
	if err != nil {
		return nil, err
	}
	c.Service = svc
	return c, nil
}
