// Command filebeat-like-consumer consumes a tenant's topic the way Filebeat's kafka input does:
// it reads the bundle's filebeat.yml, loads the TLS material like Filebeat's tlscommon package
// (CA list, certificate, and a key that may be encrypted PKCS#8 or legacy "Proc-Type:
// 4,ENCRYPTED", decrypted with ssl.key_passphrase via github.com/youmark/pkcs8), and reads with
// sarama (the Kafka client inside Filebeat) as a consumer group.
//
// Exit codes: 0 got --max records, 2 timeout, 3 authorization denied, 4 TLS/key failure, 1 other.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/youmark/pkcs8"
	"gopkg.in/yaml.v3"
)

type kafkaInput struct {
	Type       string   `yaml:"type"`
	Hosts      []string `yaml:"hosts"`
	Topics     []string `yaml:"topics"`
	GroupID    string   `yaml:"group_id"`
	ClientID   string   `yaml:"client_id"`
	CAs        []string `yaml:"ssl.certificate_authorities"`
	Cert       string   `yaml:"ssl.certificate"`
	Key        string   `yaml:"ssl.key"`
	Passphrase string   `yaml:"ssl.key_passphrase"`
	Mode       string   `yaml:"ssl.verification_mode"`
}

type filebeatConfig struct {
	Inputs []kafkaInput `yaml:"filebeat.inputs"`
}

func fail(code int, prefix string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", prefix, err)
	os.Exit(code)
}

func main() {
	configPath := flag.String("config", "filebeat.yml", "the bundle's filebeat.yml")
	dir := flag.String("dir", "", "directory holding the bundle files (replaces the paths' directory)")
	bootstrap := flag.String("bootstrap", "", "override hosts (comma separated)")
	group := flag.String("group", "", "override group_id")
	topic := flag.String("topic", "", "override topic")
	max := flag.Int("max", 1<<30, "exit 0 after this many records")
	timeoutMs := flag.Int("timeout-ms", 60000, "overall deadline")
	checkTLS := flag.Bool("check-tls-only", false, "only load the TLS material (decrypt the key) and exit")
	flag.Parse()

	raw, err := os.ReadFile(*configPath)
	if err != nil {
		fail(1, "ERROR", err)
	}
	var cfg filebeatConfig
	if err := yaml.Unmarshal(raw, &cfg); err != nil || len(cfg.Inputs) == 0 {
		fail(1, "ERROR", fmt.Errorf("no filebeat.inputs in %s: %v", *configPath, err))
	}
	in := cfg.Inputs[0]
	relocate := func(p string) string {
		if *dir == "" {
			return p
		}
		return filepath.Join(*dir, filepath.Base(p))
	}
	for i := range in.CAs {
		in.CAs[i] = relocate(in.CAs[i])
	}
	in.Cert, in.Key = relocate(in.Cert), relocate(in.Key)

	tlsConfig, err := loadTLS(in)
	if err != nil {
		fail(4, "AUTH", err)
	}
	if *checkTLS {
		fmt.Println("tls ok")
		return
	}
	if *bootstrap != "" {
		in.Hosts = strings.Split(*bootstrap, ",")
	}
	if *group != "" {
		in.GroupID = *group
	}
	if *topic != "" {
		in.Topics = []string{*topic}
	}
	os.Exit(consume(in, tlsConfig, *max, time.Duration(*timeoutMs)*time.Millisecond))
}

// loadTLS mirrors Filebeat's tlscommon: CAs into a pool, the certificate, and the key decrypted
// with the passphrase whether it is encrypted PKCS#8 or the legacy encrypted PEM form.
func loadTLS(in kafkaInput) (*tls.Config, error) {
	pool := x509.NewCertPool()
	for _, ca := range in.CAs {
		pemBytes, err := os.ReadFile(ca)
		if err != nil {
			return nil, err
		}
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("no certificate in %s", ca)
		}
	}
	certPEM, err := os.ReadFile(in.Cert)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readKey(in.Key, in.Passphrase)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate and key: %w", err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	if in.Mode == "none" {
		conf.InsecureSkipVerify = true
	}
	return conf, nil
}

func readKey(path, passphrase string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	switch {
	case block.Type == "ENCRYPTED PRIVATE KEY":
		key, err := pkcs8.ParsePKCS8PrivateKey(block.Bytes, []byte(passphrase))
		if err != nil {
			return nil, fmt.Errorf("%s: decrypting PKCS#8 key: %w", path, err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	case x509.IsEncryptedPEMBlock(block): //nolint:staticcheck // Filebeat 7.x form, still accepted
		der, err := x509.DecryptPEMBlock(block, []byte(passphrase)) //nolint:staticcheck
		if err != nil {
			return nil, fmt.Errorf("%s: decrypting legacy PEM key: %w", path, err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der}), nil
	default:
		return raw, nil
	}
}

type handler struct {
	max   int
	seen  int
	mu    sync.Mutex
	done  chan struct{}
	close sync.Once
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		h.mu.Lock()
		fmt.Println(string(msg.Value))
		h.seen++
		reached := h.seen >= h.max
		h.mu.Unlock()
		s.MarkMessage(msg, "")
		if reached {
			s.Commit()
			h.close.Do(func() { close(h.done) })
			return nil
		}
	}
	return nil
}

func denied(err error) bool {
	return errors.Is(err, sarama.ErrTopicAuthorizationFailed) || errors.Is(err, sarama.ErrGroupAuthorizationFailed) ||
		errors.Is(err, sarama.ErrClusterAuthorizationFailed)
}

func consume(in kafkaInput, tlsConfig *tls.Config, max int, timeout time.Duration) int {
	conf := sarama.NewConfig()
	conf.Version = sarama.V2_8_0_0
	conf.ClientID = in.ClientID
	conf.Net.TLS.Enable = true
	conf.Net.TLS.Config = tlsConfig
	conf.Consumer.Offsets.Initial = sarama.OffsetOldest
	conf.Consumer.Return.Errors = true
	group, err := sarama.NewConsumerGroup(in.Hosts, in.GroupID, conf)
	if err != nil {
		if denied(err) {
			fmt.Fprintf(os.Stderr, "DENIED: %v\n", err)
			return 3
		}
		fmt.Fprintf(os.Stderr, "ERROR: %v\n", err)
		return 1
	}
	defer group.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	h := &handler{max: max, done: make(chan struct{})}
	result := make(chan int, 2)
	go func() {
		for err := range group.Errors() {
			if denied(err) {
				fmt.Fprintf(os.Stderr, "DENIED: %v\n", err)
				result <- 3
				return
			}
		}
	}()
	go func() {
		for ctx.Err() == nil {
			if err := group.Consume(ctx, in.Topics, h); err != nil {
				if denied(err) {
					fmt.Fprintf(os.Stderr, "DENIED: %v\n", err)
					result <- 3
					return
				}
				if ctx.Err() == nil {
					time.Sleep(200 * time.Millisecond)
				}
			}
		}
	}()
	select {
	case <-h.done:
		return 0
	case code := <-result:
		return code
	case <-ctx.Done():
		fmt.Fprintf(os.Stderr, "TIMEOUT: got %d of %d records\n", h.seen, max)
		return 2
	}
}
