package manifests

import (
	"fmt"
	"os"
	"regexp"

	rbacv1 "k8s.io/api/rbac/v1"
)

// yamlBlock is a fenced ```yaml block of a Markdown file.
var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// DocumentedClusterRole is the ClusterRole called name in a yaml block of
// the Markdown file at path, decoded strictly. The docs are where operators
// without the chart copy RBAC from, so the chart and the tests are held to
// them rather than to a copy of their own.
func DocumentedClusterRole(path, name string) (*rbacv1.ClusterRole, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for _, m := range yamlBlock.FindAllSubmatch(b, -1) {
		objs, err := Decode(m[1])
		if err != nil {
			continue // another kind of example, or not a manifest at all
		}
		for _, o := range objs {
			if role, ok := o.Obj.(*rbacv1.ClusterRole); ok && role.Name == name {
				return role, nil
			}
		}
	}
	return nil, fmt.Errorf("%s: no yaml block holds ClusterRole %s", path, name)
}
